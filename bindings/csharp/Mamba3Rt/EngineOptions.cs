namespace Mamba3Rt
{
    /// <summary>
    /// Options for <see cref="Model.CreateEngine"/>; unset properties keep the library's defaults
    /// (256 streams decoded together, 4096 live streams, prompt chunks of 256 tokens per stream
    /// and 512 per step, 64 buffered output events per stream). Out-of-range values make
    /// CreateEngine throw <see cref="Mamba3RtException"/> with the library's message.
    /// </summary>
    public sealed class EngineOptions
    {
        /// <summary>Streams decoded together in one step (1 .. 65536); more runnable streams wait their turn in submission order.</summary>
        public int? MaxBatch { get; set; }

        /// <summary>Live streams (1 .. 2^24); <see cref="Engine.Submit"/> beyond it throws with <see cref="Status.LimitExceeded"/>.</summary>
        public int? MaxStreams { get; set; }

        /// <summary>Prompt tokens per prefill call of one stream.</summary>
        public int? PrefillChunk { get; set; }

        /// <summary>Prompt tokens per scheduler step over all streams, so that running streams keep a steady rate.</summary>
        public int? PrefillBudget { get; set; }

        /// <summary>Output events buffered per stream: a stream whose reader is that far behind pauses until it catches up.</summary>
        public int? QueueCapacity { get; set; }

        /// <summary>The C params object for these options; the caller disposes it.</summary>
        internal EngineParamsHandle ToNative()
        {
            EngineParamsHandle handle;
            Mamba3RtException.Check(NativeMethods.m3_engine_params_create(out handle));
            try
            {
                if (MaxBatch.HasValue) Mamba3RtException.Check(NativeMethods.m3_engine_params_set_max_batch(handle, MaxBatch.Value));
                if (MaxStreams.HasValue) Mamba3RtException.Check(NativeMethods.m3_engine_params_set_max_streams(handle, MaxStreams.Value));
                if (PrefillChunk.HasValue) Mamba3RtException.Check(NativeMethods.m3_engine_params_set_prefill_chunk(handle, PrefillChunk.Value));
                if (PrefillBudget.HasValue) Mamba3RtException.Check(NativeMethods.m3_engine_params_set_prefill_budget(handle, PrefillBudget.Value));
                if (QueueCapacity.HasValue) Mamba3RtException.Check(NativeMethods.m3_engine_params_set_queue_capacity(handle, QueueCapacity.Value));
                return handle;
            }
            catch
            {
                handle.Dispose();
                throw;
            }
        }
    }
}
