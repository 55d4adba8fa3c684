using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.ExceptionServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Mamba3Rt
{
    /// <summary>
    /// A text stream on one session (<c>m3_generation</c>). Input pushed before the first token
    /// is the prompt; input pushed later (a dialogue turn, a live feed) is fed before the next
    /// token, and pushing after a turn finished starts a new turn. Output comes as
    /// <see cref="Stream"/> / <see cref="Pieces"/> (an enumerable that ends with the turn),
    /// <see cref="Next"/> / <see cref="NextAsync"/> (one piece per call), or a callback
    /// (<see cref="Run"/> / <see cref="RunAsync"/>). A <see cref="CancellationToken"/> ends the
    /// turn as <see cref="FinishReason.Cancelled"/> and the call throws
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    /// <remarks>
    /// Calls are serialised by a lock; <see cref="Cancel"/> may be called from any thread at
    /// any time. The session must not be used through other calls while a generation call
    /// runs. The generation holds its session's handle, so disposing the session first only
    /// defers its release.
    /// </remarks>
    public sealed class Generation : IDisposable
    {
        private readonly GenerationHandle _handle;
        private readonly object _sync = new object();
        private volatile bool _disposed;
        private byte[] _buffer = new byte[256];
        private FinishReason _finish = FinishReason.None;

        /// <summary>The session this generation runs on.</summary>
        public Session Session { get; }

        internal Generation(Session session, GenParams parameters)
        {
            Session = session;
            SessionHandle s = session.Live();
            GenParams owned = parameters == null ? new GenParams() : null;
            bool added = false;
            try
            {
                s.DangerousAddRef(ref added);
                GenerationHandle handle;
                Mamba3RtException.Check(NativeMethods.m3_generation_create(s, (parameters ?? owned).Live(), out handle));
                handle.HoldSession(s);
                added = false; // released by the generation handle
                _handle = handle;
            }
            finally
            {
                if (added) s.DangerousRelease();
                owned?.Dispose();
            }
        }

        private GenerationHandle Live()
        {
            if (_disposed || _handle.IsClosed) throw new ObjectDisposedException(nameof(Generation));
            return _handle;
        }

        /// <summary>Why the last turn ended, or <see cref="FinishReason.None"/> while it runs.</summary>
        public FinishReason Finish
        {
            get { lock (_sync) return _finish; }
        }

        /// <summary>Appends text (the model needs a tokenizer). Empty text is an error.</summary>
        public void PushText(string text)
        {
            if (text == null) throw new ArgumentNullException(nameof(text));
            byte[] bytes = Utf8.Bytes(text);
            lock (_sync)
            {
                Mamba3RtException.Check(NativeMethods.m3_generation_push_text(Live(), bytes, (UIntPtr)bytes.Length));
                _finish = FinishReason.None;
            }
        }

        /// <summary>Appends token ids (each in 0 .. vocabulary size - 1).</summary>
        public void PushTokens(params int[] tokens)
        {
            if (tokens == null) throw new ArgumentNullException(nameof(tokens));
            lock (_sync)
            {
                Mamba3RtException.Check(NativeMethods.m3_generation_push_tokens(Live(), tokens, (UIntPtr)tokens.Length));
                _finish = FinishReason.None;
            }
        }

        /// <summary>Asks a running call to stop (any thread; a no-op once disposed).</summary>
        public void Cancel()
        {
            if (_disposed) return;
            try
            {
                NativeMethods.m3_generation_cancel(_handle);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        /// <summary>One statistic since the generation was created.</summary>
        public double Stat(GenStat stat)
        {
            lock (_sync)
            {
                double value;
                Mamba3RtException.Check(NativeMethods.m3_generation_stat(Live(), stat, out value));
                return value;
            }
        }

        // One m3_generation_next call (under _sync), growing the buffer when it is too small.
        private void Step(GenerationHandle h, out int token, out string text, out FinishReason finish)
        {
            while (true)
            {
                UIntPtr length;
                Status status = NativeMethods.m3_generation_next(h, out token, _buffer, (UIntPtr)_buffer.Length, out length, out finish);
                int n = checked((int)(ulong)length);
                if (status == Status.BufferTooSmall && n > _buffer.Length)
                {
                    _buffer = new byte[n]; // nothing was consumed: ask again
                    continue;
                }
                Mamba3RtException.Check(status);
                text = n == 0 ? string.Empty : Encoding.UTF8.GetString(_buffer, 0, n);
                return;
            }
        }

        // Ends the current turn as cancelled, so that no cancellation stays pending.
        private void EndTurnCancelled(GenerationHandle h, CancellationToken ct)
        {
            NativeMethods.m3_generation_cancel(h);
            int token;
            string text;
            FinishReason finish;
            Step(h, out token, out text, out finish);
            _finish = finish;
            throw new OperationCanceledException(ct);
        }

        private static CancellationTokenRegistration CancelOn(CancellationToken ct, Action cancel) =>
            ct.CanBeCanceled ? ct.Register(cancel) : default(CancellationTokenRegistration);

        /// <summary>
        /// The next piece of the current turn, or null once it has finished (then see
        /// <see cref="Finish"/>). Steps that carry neither a token nor text are skipped.
        /// </summary>
        /// <exception cref="OperationCanceledException">ct was cancelled; the turn ended.</exception>
        public Piece? Next(CancellationToken ct = default)
        {
            lock (_sync)
            {
                GenerationHandle h = Live();
                if (_finish != FinishReason.None) return null;
                if (ct.IsCancellationRequested) EndTurnCancelled(h, ct);
                using (CancelOn(ct, Cancel))
                {
                    while (true)
                    {
                        int token;
                        string text;
                        FinishReason finish;
                        Step(h, out token, out text, out finish);
                        _finish = finish;
                        if (finish == FinishReason.Cancelled && ct.IsCancellationRequested)
                            throw new OperationCanceledException(ct);
                        if (token >= 0 || text.Length > 0) return new Piece(token, text);
                        if (finish != FinishReason.None) return null;
                    }
                }
            }
        }

        /// <summary><see cref="Next"/> on the thread pool.</summary>
        public Task<Piece?> NextAsync(CancellationToken ct = default) => Task.Run(() => Next(ct));

        /// <summary>The pieces of the current turn, as they are produced.</summary>
        public IEnumerable<Piece> Pieces(CancellationToken ct = default)
        {
            Piece? piece;
            while ((piece = Next(ct)).HasValue)
                yield return piece.Value;
        }

        /// <summary>The text of the current turn, piece by piece, as it is produced.</summary>
        /// <example>
        /// <code>
        /// gen.PushText("The president said that");
        /// foreach (string text in gen.Stream(cancellationToken))
        ///     Console.Write(text);
        /// </code>
        /// </example>
        public IEnumerable<string> Stream(CancellationToken ct = default) => Pieces(ct).Select(p => p.Text);

        /// <summary>
        /// Push style: produces pieces until the turn finishes, calling onPiece for each on the
        /// calling thread; return false from it to stop (the turn then finishes as Cancelled).
        /// An exception thrown by onPiece stops the turn and is rethrown here once the C call
        /// has returned. onPiece must not call this generation's methods.
        /// </summary>
        public FinishReason Run(Func<Piece, bool> onPiece, CancellationToken ct = default)
        {
            if (onPiece == null) throw new ArgumentNullException(nameof(onPiece));
            lock (_sync)
            {
                GenerationHandle h = Live();
                if (_finish != FinishReason.None) return _finish;
                if (ct.IsCancellationRequested) EndTurnCancelled(h, ct);
                ExceptionDispatchInfo error = null;
                NativeMethods.PieceCallback callback = (userData, token, piece, length) =>
                {
                    if (error != null) return 1;
                    try
                    {
                        string text = Utf8.FromNative(piece, checked((int)(ulong)length));
                        return onPiece(new Piece(token, text)) ? 0 : 1;
                    }
                    catch (Exception e)
                    {
                        error = ExceptionDispatchInfo.Capture(e); // never let it unwind into C
                        return 1;
                    }
                };
                FinishReason finish;
                using (CancelOn(ct, Cancel))
                {
                    Status status = NativeMethods.m3_generation_run(h, callback, IntPtr.Zero, out finish);
                    GC.KeepAlive(callback);
                    Mamba3RtException.Check(status);
                }
                _finish = finish;
                error?.Throw();
                if (finish == FinishReason.Cancelled && ct.IsCancellationRequested)
                    throw new OperationCanceledException(ct);
                return finish;
            }
        }

        /// <summary>
        /// <see cref="Run"/> on the thread pool: onPiece is called on that thread, one piece
        /// at a time. The task ends with the finish reason, or is cancelled by ct.
        /// </summary>
        public Task<FinishReason> RunAsync(Action<Piece> onPiece, CancellationToken ct = default)
        {
            if (onPiece == null) throw new ArgumentNullException(nameof(onPiece));
            return Task.Run(() => Run(p => { onPiece(p); return true; }, ct));
        }

        /// <summary>Cancels a running call and frees the generation (idempotent).</summary>
        public void Dispose()
        {
            Cancel();
            _disposed = true;
            _handle.Dispose();
        }
    }
}
