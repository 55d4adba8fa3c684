using System;
using System.Collections.Generic;
using System.Text;
using System.Threading;

namespace Mamba3Rt
{
    /// <summary>One output event of an <see cref="EngineStream"/>.</summary>
    public struct StreamEvent
    {
        /// <summary>The token produced, or -1 when there is none (a final flushed piece, or the end).</summary>
        public int Token { get; }

        /// <summary>
        /// Its text: whole UTF-8 characters only, never (a prefix of) a pending stop string, so it
        /// can be empty while text is held back.
        /// </summary>
        public string Text { get; }

        /// <summary>
        /// <see cref="FinishReason.None"/> while the turn runs, else why it ended (the event that
        /// reports the finish may still carry a last piece).
        /// </summary>
        public FinishReason Finish { get; }

        /// <summary>An event.</summary>
        public StreamEvent(int token, string text, FinishReason finish)
        {
            Token = token;
            Text = text;
            Finish = finish;
        }

        /// <inheritdoc/>
        public override string ToString() => Text;
    }

    /// <summary>
    /// One generation request on an <see cref="Engine"/> (<c>m3_stream</c>), from
    /// <see cref="Engine.Submit"/>. Input pushed before the first token is the prompt; input
    /// pushed later is fed before the next token, and pushing after a turn finished starts a new
    /// turn on the same state. Output is pulled: <see cref="TryNext"/> waits up to a timeout for
    /// one event, <see cref="Next"/> without a limit, and <see cref="Pieces"/> enumerates the
    /// current turn's pieces.
    /// </summary>
    /// <remarks>
    /// (Named EngineStream, not Stream, so that it never clashes with System.IO.Stream.) Reads
    /// are serialised by a lock; pushes, <see cref="Cancel"/> and <see cref="Stat"/> may come
    /// from any thread at any time, also while another thread waits for an event. Dispose
    /// cancels the stream and frees its state slot in the engine.
    /// </remarks>
    public sealed class EngineStream : IDisposable
    {
        private readonly StreamHandle _handle;
        private readonly object _sync = new object();   // reads: the buffer
        private readonly object _state = new object();  // _finish
        private volatile bool _disposed;
        private byte[] _buffer = new byte[256];
        private FinishReason _finish = FinishReason.None;

        /// <summary>The engine that runs this stream.</summary>
        public Engine Engine { get; }

        internal EngineStream(Engine engine, StreamHandle handle)
        {
            Engine = engine;
            _handle = handle;
        }

        private StreamHandle Live()
        {
            if (_disposed || _handle.IsClosed) throw new ObjectDisposedException(nameof(EngineStream));
            return _handle;
        }

        /// <summary>Why the last turn ended, as far as this stream's reader has seen, or <see cref="FinishReason.None"/>.</summary>
        public FinishReason Finish
        {
            get { lock (_state) return _finish; }
        }

        private void Pushed()
        {
            lock (_state) _finish = FinishReason.None;
        }

        /// <summary>
        /// Appends text (the model needs a tokenizer). Empty text is an error. The first text
        /// pushed into a stream without prefix gets special tokens such as BOS unless
        /// <see cref="GenParams.AddSpecial"/> said otherwise.
        /// </summary>
        public void PushText(string text)
        {
            if (text == null) throw new ArgumentNullException(nameof(text));
            byte[] bytes = Utf8.Bytes(text);
            Mamba3RtException.Check(NativeMethods.m3_stream_push_text(Live(), bytes, (UIntPtr)bytes.Length));
            Pushed();
        }

        /// <summary>Appends token ids (each in 0 .. vocabulary size - 1).</summary>
        public void PushTokens(params int[] tokens)
        {
            if (tokens == null) throw new ArgumentNullException(nameof(tokens));
            Mamba3RtException.Check(NativeMethods.m3_stream_push_tokens(Live(), tokens, (UIntPtr)tokens.Length));
            Pushed();
        }

        /// <summary>
        /// Asks the stream to stop its turn; it ends with <see cref="FinishReason.Cancelled"/> at
        /// the engine's next step. Input not yet fed stays pending. Any thread; a no-op once disposed.
        /// </summary>
        public void Cancel()
        {
            if (_disposed) return;
            try
            {
                NativeMethods.m3_stream_cancel(_handle);
            }
            catch (ObjectDisposedException)
            {
            }
        }

        /// <summary>One statistic of the stream (<see cref="GenStat.TtftMs"/>: first push to first token).</summary>
        public double Stat(GenStat stat)
        {
            double value;
            Mamba3RtException.Check(NativeMethods.m3_stream_stat(Live(), stat, out value));
            return value;
        }

        private static int Milliseconds(TimeSpan timeout)
        {
            if (timeout == Timeout.InfiniteTimeSpan) return -1;
            if (timeout < TimeSpan.Zero)
                throw new ArgumentOutOfRangeException(nameof(timeout), "a timeout is non-negative or Timeout.InfiniteTimeSpan");
            double ms = Math.Ceiling(timeout.TotalMilliseconds);
            return ms >= int.MaxValue ? int.MaxValue : (int)ms;
        }

        /// <summary>
        /// Waits up to timeout (<see cref="Timeout.InfiniteTimeSpan"/>: no limit;
        /// <see cref="TimeSpan.Zero"/>: poll) for the next output event; false if none came in
        /// time. After a finish, and until new input is pushed, it returns that finish again at
        /// once (token -1, empty text).
        /// </summary>
        /// <exception cref="Mamba3RtException">
        /// Status.InvalidArgument before any input was pushed or once the engine is disposed; a
        /// stream the engine failed throws the error once (the turn then counts as cancelled).
        /// </exception>
        public bool TryNext(TimeSpan timeout, out StreamEvent streamEvent)
        {
            int ms = Milliseconds(timeout);
            lock (_sync)
            {
                StreamHandle h = Live();
                while (true)
                {
                    int token;
                    UIntPtr length;
                    FinishReason finish;
                    Status status = NativeMethods.m3_stream_next(h, ms, out token, _buffer, (UIntPtr)_buffer.Length, out length, out finish);
                    int n = checked((int)(ulong)length);
                    if (status == Status.BufferTooSmall && n > _buffer.Length)
                    {
                        _buffer = new byte[n]; // the event was kept: ask again
                        continue;
                    }
                    if (status == Status.Timeout)
                    {
                        streamEvent = default(StreamEvent);
                        return false;
                    }
                    if (status != Status.Ok && finish != FinishReason.None)
                        lock (_state) _finish = finish;
                    Mamba3RtException.Check(status);
                    if (finish != FinishReason.None)
                        lock (_state) _finish = finish;
                    streamEvent = new StreamEvent(token, n == 0 ? string.Empty : Encoding.UTF8.GetString(_buffer, 0, n), finish);
                    return true;
                }
            }
        }

        /// <summary>The next output event, waiting as long as it takes (see <see cref="TryNext"/>).</summary>
        public StreamEvent Next()
        {
            StreamEvent e;
            TryNext(Timeout.InfiniteTimeSpan, out e);
            return e;
        }

        // Cancels the stream at most once for one Pieces enumeration.
        private sealed class CancelOnce
        {
            private readonly EngineStream _stream;
            private int _done;

            internal CancelOnce(EngineStream stream) { _stream = stream; }

            internal void Cancel()
            {
                if (Interlocked.Exchange(ref _done, 1) == 0) _stream.Cancel();
            }
        }

        /// <summary>
        /// The pieces of the current turn as they are produced; the enumeration ends with the
        /// turn (then see <see cref="Finish"/>). Events that carry neither a token nor text are
        /// skipped. When ct is cancelled the turn is cancelled, and the enumeration throws
        /// <see cref="OperationCanceledException"/> once it has ended.
        /// </summary>
        public IEnumerable<Piece> Pieces(CancellationToken ct = default)
        {
            var once = new CancelOnce(this);
            while (true)
            {
                StreamEvent e;
                using (ct.CanBeCanceled ? ct.Register(once.Cancel) : default(CancellationTokenRegistration))
                    e = Next();
                if (e.Finish == FinishReason.Cancelled && ct.IsCancellationRequested)
                    throw new OperationCanceledException(ct);
                if (e.Token >= 0 || e.Text.Length > 0) yield return new Piece(e.Token, e.Text);
                if (e.Finish != FinishReason.None) yield break;
            }
        }

        /// <summary>Cancels the stream and frees it (idempotent); its state slot in the engine is released.</summary>
        public void Dispose()
        {
            Cancel();
            _disposed = true;
            _handle.Dispose();
        }
    }
}
