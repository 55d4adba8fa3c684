using System;
using System.Runtime.CompilerServices;

namespace Mamba3Rt
{
    /// <summary>
    /// A Hugging Face tokenizer.json byte-level BPE tokenizer (<c>m3_tokenizer</c>): loaded from
    /// a file (<see cref="Load"/>) or borrowed from a model (<see cref="Model.GetTokenizer"/>).
    /// Immutable; any number of threads may use it at once.
    /// </summary>
    public sealed class Tokenizer : IDisposable
    {
        private readonly TokenizerHandle _handle;
        // Set by Dispose: a SafeHandle that another handle still references is not closed at once.
        private volatile bool _disposed;

        internal Tokenizer(TokenizerHandle handle) { _handle = handle; }

        /// <summary>Loads a tokenizer.json file.</summary>
        /// <exception cref="Mamba3RtException">The file is missing, malformed or unsupported.</exception>
        public static Tokenizer Load(string path)
        {
            NativeLibraryLoader.EnsureLoaded();
            return LoadCore(path);
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see NativeLibraryLoader
        private static Tokenizer LoadCore(string path)
        {
            TokenizerHandle handle;
            Mamba3RtException.Check(NativeMethods.m3_tokenizer_load(Utf8.NulTerminated(path, "path"), out handle));
            return new Tokenizer(handle);
        }

        private TokenizerHandle Live()
        {
            if (_disposed || _handle.IsClosed) throw new ObjectDisposedException(nameof(Tokenizer));
            return _handle;
        }

        /// <summary>Token ids of text; addSpecial applies the post-processor (e.g. a BOS token).</summary>
        public int[] Encode(string text, bool addSpecial = false)
        {
            if (text == null) throw new ArgumentNullException(nameof(text));
            byte[] bytes = Utf8.Bytes(text);
            var ids = new int[bytes.Length + 8];
            UIntPtr count;
            Status status = NativeMethods.m3_tokenize(Live(), bytes, (UIntPtr)bytes.Length, addSpecial ? 1 : 0, ids, (UIntPtr)ids.Length, out count);
            if (status == Status.BufferTooSmall && (int)count > ids.Length)
            {
                ids = new int[(int)count];
                status = NativeMethods.m3_tokenize(Live(), bytes, (UIntPtr)bytes.Length, addSpecial ? 1 : 0, ids, (UIntPtr)ids.Length, out count);
            }
            Mamba3RtException.Check(status);
            Array.Resize(ref ids, (int)count);
            return ids;
        }

        /// <summary>The text of token ids (invalid UTF-8 becomes U+FFFD); skipSpecial leaves out special tokens.</summary>
        public string Decode(int[] tokens, bool skipSpecial = false)
        {
            if (tokens == null) throw new ArgumentNullException(nameof(tokens));
            byte[] text = Buffers.TwoCall<byte>(tokens.Length * 8 + 16, (buffer, capacity) =>
            {
                UIntPtr n;
                Status s = NativeMethods.m3_detokenize(Live(), tokens, (UIntPtr)tokens.Length, skipSpecial ? 1 : 0, buffer, capacity, out n);
                return Tuple.Create(s, n);
            });
            return System.Text.Encoding.UTF8.GetString(text);
        }

        /// <summary>The raw bytes of one token (possibly part of a UTF-8 character).</summary>
        public byte[] TokenBytes(int token)
        {
            return Buffers.TwoCall<byte>(32, (buffer, capacity) =>
            {
                UIntPtr n;
                Status s = NativeMethods.m3_token_bytes(Live(), token, buffer, capacity, out n);
                return Tuple.Create(s, n);
            });
        }

        /// <summary>One more than the largest token id.</summary>
        public int VocabSize
        {
            get
            {
                int size;
                Mamba3RtException.Check(NativeMethods.m3_tokenizer_vocab_size(Live(), out size));
                return size;
            }
        }

        /// <summary>Frees a loaded tokenizer, or releases a borrowed one's hold on its model (idempotent).</summary>
        public void Dispose()
        {
            _disposed = true;
            _handle.Dispose();
        }
    }
}
