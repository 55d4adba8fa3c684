using System;
using System.Runtime.CompilerServices;

namespace Mamba3Rt
{
    /// <summary>
    /// Sampling and stopping options of a generation (<c>m3_gen_params</c>), set fluently:
    /// <c>new GenParams().Temperature(0.8f).TopP(0.95f).Seed(1).MaxTokens(60)</c>. Defaults:
    /// temperature 1, no top-k/top-p/min-p, no penalties (repeat window 64), seed 0, at most
    /// 256 tokens per turn, stop at the model's end-of-sequence tokens. Invalid values throw
    /// <see cref="Mamba3RtException"/> with the library's message. The options are copied when
    /// a generation starts. Used by one thread at a time.
    /// </summary>
    public sealed class GenParams : IDisposable
    {
        internal readonly GenParamsHandle Handle;
        // Set by Dispose: a SafeHandle that another handle still references is not closed at once.
        private volatile bool _disposed;

        /// <summary>Default options.</summary>
        public GenParams()
        {
            NativeLibraryLoader.EnsureLoaded();
            Handle = Create();
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see NativeLibraryLoader
        private static GenParamsHandle Create()
        {
            GenParamsHandle handle;
            Mamba3RtException.Check(NativeMethods.m3_gen_params_create(out handle));
            return handle;
        }

        internal GenParamsHandle Live()
        {
            if (_disposed || Handle.IsClosed) throw new ObjectDisposedException(nameof(GenParams));
            return Handle;
        }

        private GenParams Set(Status status)
        {
            Mamba3RtException.Check(status);
            return this;
        }

        /// <summary>Greedy decoding: always the most likely token.</summary>
        public GenParams Greedy() => Set(NativeMethods.m3_gen_params_set_greedy(Live()));

        /// <summary>Softmax temperature; &lt;= 0 means greedy. Must be finite.</summary>
        public GenParams Temperature(float temperature) => Set(NativeMethods.m3_gen_params_set_temperature(Live(), temperature));

        /// <summary>Keep the k most likely tokens (0 = off).</summary>
        public GenParams TopK(int k) => Set(NativeMethods.m3_gen_params_set_top_k(Live(), k));

        /// <summary>Nucleus sampling, in (0, 1] (1 = off).</summary>
        public GenParams TopP(float p) => Set(NativeMethods.m3_gen_params_set_top_p(Live(), p));

        /// <summary>Drop tokens below minP times the top probability, in [0, 1] (0 = off).</summary>
        public GenParams MinP(float minP) => Set(NativeMethods.m3_gen_params_set_min_p(Live(), minP));

        /// <summary>Repetition penalty (1 = off) over the last lastN tokens (-1: all, 0: none).</summary>
        public GenParams RepeatPenalty(float penalty, int lastN = 64) => Set(NativeMethods.m3_gen_params_set_repeat_penalty(Live(), penalty, lastN));

        /// <summary>Presence penalty (0 = off).</summary>
        public GenParams PresencePenalty(float penalty) => Set(NativeMethods.m3_gen_params_set_presence_penalty(Live(), penalty));

        /// <summary>Frequency penalty (0 = off).</summary>
        public GenParams FrequencyPenalty(float penalty) => Set(NativeMethods.m3_gen_params_set_frequency_penalty(Live(), penalty));

        /// <summary>Seed of the sampling RNG (results are platform-independent).</summary>
        public GenParams Seed(ulong seed) => Set(NativeMethods.m3_gen_params_set_seed(Live(), seed));

        /// <summary>Adds bias to a token's logit (float.NegativeInfinity bans it).</summary>
        public GenParams LogitBias(int token, float bias) => Set(NativeMethods.m3_gen_params_add_logit_bias(Live(), token, bias));

        /// <summary>Tokens to generate per turn.</summary>
        public GenParams MaxTokens(int maxTokens) => Set(NativeMethods.m3_gen_params_set_max_tokens(Live(), maxTokens));

        /// <summary>An extra token that ends a turn (not emitted).</summary>
        public GenParams StopToken(int token) => Set(NativeMethods.m3_gen_params_add_stop_token(Live(), token));

        /// <summary>A string that ends a turn; it is cut from the output.</summary>
        public GenParams StopString(string text) => Set(NativeMethods.m3_gen_params_add_stop_string(Live(), Utf8.NulTerminated(text, "stop string")));

        /// <summary>Keep generating past the model's end-of-sequence tokens.</summary>
        public GenParams IgnoreEos(bool ignore = true) => Set(NativeMethods.m3_gen_params_set_ignore_eos(Live(), ignore ? 1 : 0));

        /// <summary>Whether the first text pushed into an empty session gets special tokens such as BOS (default true).</summary>
        public GenParams AddSpecial(bool add) => Set(NativeMethods.m3_gen_params_set_add_special(Live(), add ? 1 : 0));

        /// <summary>Frees the options (idempotent).</summary>
        public void Dispose()
        {
            _disposed = true;
            Handle.Dispose();
        }
    }
}
