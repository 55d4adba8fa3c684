using System;

namespace Mamba3Rt
{
    /// <summary>
    /// One stream's fixed-size recurrent state (<c>m3_session</c>). The C API lets one thread
    /// at a time use a session (a concurrent call fails with Status.SessionBusy); different
    /// sessions may run on different threads. A failed call leaves the session unchanged.
    /// </summary>
    public sealed class Session : IDisposable
    {
        internal readonly SessionHandle Handle;
        // Set by Dispose: a SafeHandle that another handle still references is not closed at once.
        private volatile bool _disposed;

        /// <summary>Floats per logits row (the padded vocabulary).</summary>
        public int VocabPadded { get; }

        internal Session(Model model)
        {
            VocabPadded = model.VocabPadded;
            Mamba3RtException.Check(NativeMethods.m3_session_create(model.Live(), out Handle));
        }

        private Session(SessionHandle handle, int vocabPadded)
        {
            Handle = handle;
            VocabPadded = vocabPadded;
        }

        internal SessionHandle Live()
        {
            if (_disposed || Handle.IsClosed) throw new ObjectDisposedException(nameof(Session));
            return Handle;
        }

        /// <summary>Zeroes the state, as if just created.</summary>
        public void Reset() => Mamba3RtException.Check(NativeMethods.m3_session_reset(Live()));

        /// <summary>Feeds tokens (prefill), continuing from the current state, without logits.</summary>
        public void Feed(int[] tokens) => FeedLogits(tokens, LogitsMode.None);

        /// <summary>Feeds tokens and returns the logits rows mode selects, VocabPadded floats each.</summary>
        public float[] FeedLogits(int[] tokens, LogitsMode mode)
        {
            if (tokens == null) throw new ArgumentNullException(nameof(tokens));
            int rows = mode == LogitsMode.Last ? 1 : mode == LogitsMode.All ? tokens.Length : 0;
            float[] logits = rows == 0 ? null : new float[rows * VocabPadded];
            Mamba3RtException.Check(NativeMethods.m3_session_feed(Live(), tokens, (UIntPtr)tokens.Length, mode,
                logits, (UIntPtr)(logits?.Length ?? 0)));
            return logits ?? new float[0];
        }

        /// <summary>Decodes one token and returns its logits row.</summary>
        public float[] Step(int token)
        {
            var logits = new float[VocabPadded];
            Mamba3RtException.Check(NativeMethods.m3_session_step(Live(), token, logits, (UIntPtr)logits.Length));
            return logits;
        }

        /// <summary>Tokens the state has absorbed since creation or Reset.</summary>
        public long TokenCount
        {
            get
            {
                long n;
                Mamba3RtException.Check(NativeMethods.m3_session_n_tokens(Live(), out n));
                return n;
            }
        }

        /// <summary>The state as a self-describing blob, for <see cref="Restore"/> on any session of the same model.</summary>
        public byte[] Snapshot()
        {
            return Buffers.TwoCall<byte>(0, (buffer, capacity) =>
            {
                UIntPtr size;
                Status s = NativeMethods.m3_session_save(Live(), buffer, capacity, out size);
                return Tuple.Create(s, size);
            });
        }

        /// <summary>Restores a <see cref="Snapshot"/>.</summary>
        /// <exception cref="Mamba3RtException">Status.ModelMismatch for another model's blob, Status.Format for a damaged one.</exception>
        public void Restore(byte[] blob)
        {
            if (blob == null) throw new ArgumentNullException(nameof(blob));
            Mamba3RtException.Check(NativeMethods.m3_session_restore(Live(), blob, (UIntPtr)blob.Length));
        }

        /// <summary>A new, independent session holding a copy of this state.</summary>
        public Session Fork()
        {
            SessionHandle fork;
            Mamba3RtException.Check(NativeMethods.m3_session_fork(Live(), out fork));
            return new Session(fork, VocabPadded);
        }

        /// <summary>One part of one layer's state as float32 (experimental in the C API).</summary>
        public float[] ReadState(int layer, StatePart part)
        {
            return Buffers.TwoCall<float>(0, (buffer, capacity) =>
            {
                UIntPtr count;
                Status s = NativeMethods.m3_session_read_state(Live(), layer, part, buffer, capacity, out count);
                return Tuple.Create(s, count);
            });
        }

        /// <summary>Starts a generation on this session (default options when parameters is null).</summary>
        public Generation StartGeneration(GenParams parameters = null) => new Generation(this, parameters);

        /// <summary>
        /// One decode step for several sessions of the same model in one batched call:
        /// tokens[i] goes to sessions[i]. Returns one logits row per session, in order. On
        /// error no session is changed.
        /// </summary>
        public static float[] DecodeBatch(Session[] sessions, int[] tokens)
        {
            if (sessions == null) throw new ArgumentNullException(nameof(sessions));
            if (tokens == null) throw new ArgumentNullException(nameof(tokens));
            if (sessions.Length != tokens.Length)
                throw new Mamba3RtException(Status.InvalidArgument, sessions.Length + " sessions but " + tokens.Length + " tokens");
            if (sessions.Length == 0) throw new Mamba3RtException(Status.InvalidArgument, "no sessions");
            var pointers = new IntPtr[sessions.Length];
            var added = new bool[sessions.Length];
            try
            {
                for (int i = 0; i < sessions.Length; i++)
                {
                    if (sessions[i] == null) throw new ArgumentNullException(nameof(sessions), "sessions[" + i + "] is null");
                    sessions[i].Live().DangerousAddRef(ref added[i]);
                    pointers[i] = sessions[i].Handle.DangerousGetHandle();
                }
                var logits = new float[sessions.Length * sessions[0].VocabPadded];
                Mamba3RtException.Check(NativeMethods.m3_decode_batch(pointers, tokens, (UIntPtr)sessions.Length, logits, (UIntPtr)logits.Length));
                return logits;
            }
            finally
            {
                for (int i = 0; i < sessions.Length; i++)
                    if (added[i]) sessions[i].Handle.DangerousRelease();
            }
        }

        /// <summary>Frees the session (idempotent). A generation still running on it keeps it alive until that is disposed.</summary>
        public void Dispose()
        {
            _disposed = true;
            Handle.Dispose();
        }
    }
}
