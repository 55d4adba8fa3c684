using System;
using System.Runtime.InteropServices;

namespace Mamba3Rt
{
    // One SafeHandle per C handle type. The runtime keeps a handle alive (and unreleased)
    // for the duration of every P/Invoke call that takes it, so Dispose on another thread
    // cannot free it mid-call, and the finalizer releases handles that were never disposed.

    /// <summary>An <c>m3_model*</c>, freed with m3_model_free.</summary>
    internal sealed class ModelHandle : SafeHandle
    {
        public ModelHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_model_free(handle);
            return true;
        }
    }

    /// <summary>An <c>m3_model_params*</c>, freed with m3_model_params_destroy.</summary>
    internal sealed class ModelParamsHandle : SafeHandle
    {
        public ModelParamsHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_model_params_destroy(handle);
            return true;
        }
    }

    /// <summary>An <c>m3_session*</c>, freed with m3_session_free.</summary>
    internal sealed class SessionHandle : SafeHandle
    {
        public SessionHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_session_free(handle);
            return true;
        }
    }

    /// <summary>
    /// An <c>m3_tokenizer*</c>: owned (from m3_tokenizer_load, freed with m3_tokenizer_free)
    /// or borrowed from a model, in which case it holds a reference on the model's handle so
    /// that the model is freed only after the tokenizer is released.
    /// </summary>
    internal sealed class TokenizerHandle : SafeHandle
    {
        private ModelHandle _owner;

        public TokenizerHandle() : base(IntPtr.Zero, true) { }

        /// <summary>A borrowed tokenizer; the caller has already called owner.DangerousAddRef.</summary>
        internal TokenizerHandle(IntPtr borrowed, ModelHandle owner) : base(IntPtr.Zero, true)
        {
            _owner = owner;
            SetHandle(borrowed);
        }

        public override bool IsInvalid => handle == IntPtr.Zero;

        protected override bool ReleaseHandle()
        {
            if (_owner == null) NativeMethods.m3_tokenizer_free(handle);
            else _owner.DangerousRelease();
            return true;
        }
    }

    /// <summary>An <c>m3_gen_params*</c>, freed with m3_gen_params_destroy.</summary>
    internal sealed class GenParamsHandle : SafeHandle
    {
        public GenParamsHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_gen_params_destroy(handle);
            return true;
        }
    }

    /// <summary>
    /// An <c>m3_generation*</c>, freed with m3_generation_free. It holds a reference on its
    /// session's handle (the C API requires the session to outlive the generation), released
    /// after the generation is freed.
    /// </summary>
    internal sealed class GenerationHandle : SafeHandle
    {
        private SessionHandle _session;

        public GenerationHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;

        /// <summary>Records the session; the caller has already called session.DangerousAddRef.</summary>
        internal void HoldSession(SessionHandle session) => _session = session;

        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_generation_free(handle);
            _session?.DangerousRelease();
            return true;
        }
    }

    /// <summary>An <c>m3_engine_params*</c>, freed with m3_engine_params_destroy.</summary>
    internal sealed class EngineParamsHandle : SafeHandle
    {
        public EngineParamsHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_engine_params_destroy(handle);
            return true;
        }
    }

    /// <summary>
    /// An <c>m3_engine*</c>, freed with m3_engine_free (which stops its scheduler and cancels
    /// its running streams; their handles stay valid until released).
    /// </summary>
    internal sealed class EngineHandle : SafeHandle
    {
        public EngineHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_engine_free(handle);
            return true;
        }
    }

    /// <summary>An <c>m3_stream*</c>, freed with m3_stream_free (before or after its engine).</summary>
    internal sealed class StreamHandle : SafeHandle
    {
        public StreamHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid => handle == IntPtr.Zero;
        protected override bool ReleaseHandle()
        {
            NativeMethods.m3_stream_free(handle);
            return true;
        }
    }
}
