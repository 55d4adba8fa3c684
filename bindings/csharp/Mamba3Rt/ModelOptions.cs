namespace Mamba3Rt
{
    /// <summary>
    /// Load options for <see cref="Model.Load"/>; unset properties keep the library's defaults
    /// (backend Auto, A activation from the config, one CPU thread per core, tensors of at most
    /// 16 GiB, no limit on sessions).
    /// </summary>
    public sealed class ModelOptions
    {
        /// <summary>The backend to run on.</summary>
        public Backend? Backend { get; set; }

        /// <summary>
        /// Which device a GPU backend runs on: a decimal index in the order the backend lists
        /// them, or a case-insensitive part of the device's name (e.g. "llvmpipe", "NVIDIA"; the
        /// CUDA backend takes indices only). Null or "" is the backend's choice; the CPU backends
        /// ignore it. A selector that matches no device makes <see cref="Model.Load"/> fail with
        /// <see cref="Status.BackendUnavailable"/>; <see cref="Model.DeviceName"/> tells which
        /// device was picked. At most 255 bytes of UTF-8.
        /// </summary>
        public string Device { get; set; }

        /// <summary>CPU worker threads (the calling thread counts as one); 0 means one per core.</summary>
        public int? Threads { get; set; }

        /// <summary>Overrides how the decay rate A is computed.</summary>
        public AActivation? AActivation { get; set; }

        /// <summary>
        /// The largest tensor a checkpoint may hold, in bytes as stored: a larger one makes
        /// <see cref="Model.Load"/> throw with <see cref="Status.LimitExceeded"/> before any weight
        /// is converted or uploaded. The library's default is 16 GiB; 0 means no limit. A limit for
        /// processes that load models they do not trust.
        /// </summary>
        public long? MaxTensorBytes { get; set; }

        /// <summary>
        /// The most sessions that may be alive at once on the loaded model, counting forks, an
        /// engine's streams and sessions that outlive the model: <see cref="Model.CreateSession"/>,
        /// <see cref="Session.Fork"/> and <see cref="Engine.Submit"/> beyond it throw with
        /// <see cref="Status.LimitExceeded"/>. The library's default is 0, no limit;
        /// <see cref="Model.LiveSessions"/> tells how many are alive.
        /// </summary>
        public int? MaxSessions { get; set; }

        /// <summary>The C params object for these options; the caller disposes it.</summary>
        internal ModelParamsHandle ToNative()
        {
            ModelParamsHandle handle;
            Mamba3RtException.Check(NativeMethods.m3_model_params_create(out handle));
            try
            {
                if (Backend.HasValue) Mamba3RtException.Check(NativeMethods.m3_model_params_set_backend(handle, Backend.Value));
                if (Device != null) Mamba3RtException.Check(NativeMethods.m3_model_params_set_device(handle, Utf8.NulTerminated(Device, "device")));
                if (Threads.HasValue) Mamba3RtException.Check(NativeMethods.m3_model_params_set_threads(handle, Threads.Value));
                if (AActivation.HasValue) Mamba3RtException.Check(NativeMethods.m3_model_params_set_a_activation(handle, AActivation.Value));
                if (MaxTensorBytes.HasValue) Mamba3RtException.Check(NativeMethods.m3_model_params_set_max_tensor_bytes(handle, MaxTensorBytes.Value));
                if (MaxSessions.HasValue) Mamba3RtException.Check(NativeMethods.m3_model_params_set_max_sessions(handle, MaxSessions.Value));
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
