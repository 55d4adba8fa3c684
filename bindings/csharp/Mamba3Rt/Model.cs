using System;
using System.Runtime.CompilerServices;

namespace Mamba3Rt
{
    /// <summary>
    /// A loaded model (<c>m3_model</c>): weights that any number of threads may share, as the
    /// C API allows. Sessions keep the weights alive, so a model may be disposed before its
    /// sessions; a tokenizer from <see cref="GetTokenizer"/> keeps the model handle itself
    /// alive until it is disposed.
    /// </summary>
    /// <example>
    /// <code>
    /// using (var model = Model.Load("models/default"))
    /// using (var session = model.CreateSession())
    /// using (var gen = session.StartGeneration(new GenParams().Greedy().MaxTokens(20)))
    /// {
    ///     gen.PushText("The president said that");
    ///     foreach (string piece in gen.Stream())
    ///         Console.Write(piece);
    /// }
    /// </code>
    /// </example>
    public sealed class Model : IDisposable
    {
        internal readonly ModelHandle Handle;
        // Set by Dispose: a SafeHandle that another handle still references is not closed at once.
        private volatile bool _disposed;

        private Model(ModelHandle handle) { Handle = handle; }

        /// <summary>Loads a model directory (config.json plus model.safetensors or pytorch_model.bin).</summary>
        /// <exception cref="Mamba3RtException">The directory cannot be loaded; the message says why.</exception>
        public static Model Load(string directory, ModelOptions options = null)
        {
            NativeLibraryLoader.EnsureLoaded();
            return LoadCore(directory, options);
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see NativeLibraryLoader
        private static Model LoadCore(string directory, ModelOptions options)
        {
            byte[] dir = Utf8.NulTerminated(directory, "model directory");
            ModelHandle handle;
            if (options == null)
            {
                Mamba3RtException.Check(NativeMethods.m3_model_load(dir, IntPtr.Zero, out handle));
            }
            else
            {
                using (ModelParamsHandle parameters = options.ToNative())
                    Mamba3RtException.Check(NativeMethods.m3_model_load(dir, parameters, out handle));
            }
            return new Model(handle);
        }

        /// <summary>One integer property.</summary>
        public long Info(InfoKey key)
        {
            long value;
            Mamba3RtException.Check(NativeMethods.m3_model_info(Live(), key, out value));
            return value;
        }

        /// <summary>Number of token ids.</summary>
        public int VocabSize => checked((int)Info(InfoKey.VocabSize));

        /// <summary>Floats per logits row.</summary>
        public int VocabPadded => checked((int)Info(InfoKey.VocabPadded));

        /// <summary>
        /// The name of the device the model runs on, e.g. "NVIDIA H100 80GB HBM3" or
        /// "llvmpipe (LLVM 15.0.6, 256 bits)"; "CPU" for the CPU backends.
        /// </summary>
        public string DeviceName
        {
            get
            {
                byte[] name = Buffers.TwoCall<byte>(64, (buffer, capacity) =>
                {
                    UIntPtr n;
                    Status s = NativeMethods.m3_model_device_name(Live(), buffer, capacity, out n);
                    return Tuple.Create(s, n);
                });
                return System.Text.Encoding.UTF8.GetString(name);
            }
        }

        /// <summary>How the block matrices are stored.</summary>
        public WeightType WeightType => (WeightType)Info(InfoKey.WeightType);

        /// <summary>
        /// Sessions alive now on this model, counting forks, an engine's streams and sessions that
        /// outlive the model.
        /// </summary>
        public int LiveSessions => checked((int)Info(InfoKey.LiveSessions));

        /// <summary>The most sessions that may be alive at once (<see cref="ModelOptions.MaxSessions"/>); 0 = no limit.</summary>
        public int MaxSessions => checked((int)Info(InfoKey.MaxSessions));

        /// <summary>A new session with a zero state.</summary>
        public Session CreateSession() => new Session(this);

        /// <summary>
        /// Starts a streaming engine on this model (options null: the library's defaults), for
        /// many concurrent streams decoded in batches.
        /// </summary>
        /// <exception cref="Mamba3RtException">An option is out of range; the message names it.</exception>
        public Engine CreateEngine(EngineOptions options = null) => new Engine(this, options);

        /// <summary>
        /// The model directory's tokenizer (its tokenizer.json). It belongs to the model; dispose
        /// it when done (the model's memory is released only after both are disposed).
        /// </summary>
        /// <exception cref="Mamba3RtException">Status.Unsupported if the directory has none.</exception>
        public Tokenizer GetTokenizer()
        {
            ModelHandle model = Live();
            bool added = false;
            model.DangerousAddRef(ref added);
            try
            {
                IntPtr borrowed;
                Mamba3RtException.Check(NativeMethods.m3_model_tokenizer(model, out borrowed));
                var tokenizer = new Tokenizer(new TokenizerHandle(borrowed, model));
                added = false; // the tokenizer handle releases it
                return tokenizer;
            }
            finally
            {
                if (added) model.DangerousRelease();
            }
        }

        internal ModelHandle Live()
        {
            if (_disposed || Handle.IsClosed) throw new ObjectDisposedException(nameof(Model));
            return Handle;
        }

        /// <summary>Releases the model handle (idempotent).</summary>
        public void Dispose()
        {
            _disposed = true;
            Handle.Dispose();
        }
    }
}
