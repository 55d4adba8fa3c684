using System;

namespace Mamba3Rt
{
    /// <summary>
    /// Many concurrent generation streams on one model (<c>m3_engine</c>): one scheduler thread
    /// decodes every generating stream in one batched call per step and feeds new prompts in
    /// chunks. Batching does not change results: an <see cref="EngineStream"/> produces what
    /// the same request gives alone through a <see cref="Generation"/> with the same
    /// <see cref="GenParams"/>.
    /// </summary>
    /// <remarks>
    /// Any thread may submit and read statistics. The engine keeps the model's weights alive, so
    /// the <see cref="Model"/> may be disposed first. Disposing the engine stops its scheduler:
    /// running streams end with <see cref="FinishReason.Cancelled"/>, stay usable for reading
    /// (and must still be disposed), and pushing to them throws. A stream refers to its engine,
    /// so an engine is never finalized while one of its streams is reachable.
    /// </remarks>
    /// <example>
    /// <code>
    /// using (var engine = model.CreateEngine(new EngineOptions { MaxBatch = 64 }))
    /// using (var parameters = new GenParams().Greedy().MaxTokens(20))
    /// using (var stream = engine.Submit(parameters))
    /// {
    ///     stream.PushText("The president said that");
    ///     foreach (Piece piece in stream.Pieces(cancellationToken))
    ///         Console.Write(piece.Text);
    /// }
    /// </code>
    /// </example>
    public sealed class Engine : IDisposable
    {
        internal readonly EngineHandle Handle;
        // Set by Dispose: a SafeHandle in use by a call in progress is not closed at once.
        private volatile bool _disposed;

        internal Engine(Model model, EngineOptions options)
        {
            ModelHandle m = model.Live();
            if (options == null)
            {
                Mamba3RtException.Check(NativeMethods.m3_engine_create(m, IntPtr.Zero, out Handle));
            }
            else
            {
                using (EngineParamsHandle parameters = options.ToNative())
                    Mamba3RtException.Check(NativeMethods.m3_engine_create(m, parameters, out Handle));
            }
        }

        internal EngineHandle Live()
        {
            if (_disposed || Handle.IsClosed) throw new ObjectDisposedException(nameof(Engine));
            return Handle;
        }

        /// <summary>
        /// A new stream, idle until input is pushed, with the given options (copied; the
        /// defaults when parameters is null). With a prefix session the stream starts from a copy
        /// of its state (e.g. a system prompt fed once and shared by many streams); the session
        /// is not changed and must not be used by another thread during the call.
        /// </summary>
        /// <exception cref="Mamba3RtException">
        /// <see cref="Status.LimitExceeded"/> beyond the engine's MaxStreams;
        /// <see cref="Status.ModelMismatch"/> for a prefix session of another model.
        /// </exception>
        public EngineStream Submit(GenParams parameters = null, Session prefix = null)
        {
            EngineHandle engine = Live();
            GenParams owned = parameters == null ? new GenParams() : null;
            try
            {
                GenParamsHandle p = (parameters ?? owned).Live();
                StreamHandle handle;
                if (prefix == null)
                    Mamba3RtException.Check(NativeMethods.m3_engine_submit(engine, p, IntPtr.Zero, null, IntPtr.Zero, out handle));
                else
                    Mamba3RtException.Check(NativeMethods.m3_engine_submit(engine, p, prefix.Live(), null, IntPtr.Zero, out handle));
                return new EngineStream(this, handle);
            }
            finally
            {
                owned?.Dispose();
            }
        }

        /// <summary>One statistic of the engine.</summary>
        public long Stat(EngineStat stat)
        {
            long value;
            Mamba3RtException.Check(NativeMethods.m3_engine_stat(Live(), stat, out value));
            return value;
        }

        /// <summary>Stops the scheduler and frees the engine (idempotent); running streams end as cancelled.</summary>
        public void Dispose()
        {
            _disposed = true;
            Handle.Dispose();
        }
    }
}
