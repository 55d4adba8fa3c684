using System;
using System.Runtime.InteropServices;

namespace Mamba3Rt
{
    /// <summary>
    /// The P/Invoke declarations of include/mamba3rt.h, one per C function (a few have two
    /// overloads). Handles are <see cref="SafeHandle"/>s; text goes in as NUL-terminated or
    /// counted UTF-8 bytes; <c>size_t</c> is <see cref="UIntPtr"/>. The test suite checks these
    /// declarations against the header (HeaderCheck.cs).
    /// </summary>
    /// <remarks>
    /// The library name is the soname, so that a library preloaded by
    /// <see cref="NativeLibraryLoader"/> from an explicit path is the one bound here.
    /// </remarks>
    internal static class NativeMethods
    {
        internal const string Library = "libmamba3rt.so.1";
        private const CallingConvention Cdecl = CallingConvention.Cdecl;

        // Status codes and errors
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern IntPtr m3_status_name(Status status);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern IntPtr m3_last_error();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern IntPtr m3_version();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern uint m3_abi_version();
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern long m3_live_handles();

        // Backends
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern IntPtr m3_backend_name(Backend backend);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_backend_available(Backend backend);

        // Model
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_create(out ModelParamsHandle outParams);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_model_params_destroy(IntPtr parameters);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_set_backend(ModelParamsHandle parameters, Backend backend);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_set_device(ModelParamsHandle parameters, byte[] device);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_set_a_activation(ModelParamsHandle parameters, AActivation activation);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_set_threads(ModelParamsHandle parameters, int nThreads);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_set_max_tensor_bytes(ModelParamsHandle parameters, long maxBytes);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_params_set_max_sessions(ModelParamsHandle parameters, int maxSessions);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_load(byte[] modelDir, ModelParamsHandle parameters, out ModelHandle outModel);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_load(byte[] modelDir, IntPtr parameters, out ModelHandle outModel);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_model_free(IntPtr model);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_info(ModelHandle model, InfoKey key, out long outValue);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_device_name(ModelHandle model, [Out] byte[] outName, UIntPtr capacity, out UIntPtr outLen);

        // Sessions
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_create(ModelHandle model, out SessionHandle outSession);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_session_free(IntPtr session);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_reset(SessionHandle session);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_feed(SessionHandle session, int[] tokens, UIntPtr nTokens, LogitsMode mode, [Out] float[] logits, UIntPtr logitsCapacity);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_step(SessionHandle session, int token, [Out] float[] logits, UIntPtr logitsCapacity);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_decode_batch(IntPtr[] sessions, int[] tokens, UIntPtr nSessions, [Out] float[] logits, UIntPtr logitsCapacity);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_n_tokens(SessionHandle session, out long outNTokens);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_save(SessionHandle session, [Out] byte[] buffer, UIntPtr capacity, out UIntPtr outSize);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_restore(SessionHandle session, byte[] blob, UIntPtr size);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_fork(SessionHandle session, out SessionHandle outSession);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_session_read_state(SessionHandle session, int layer, StatePart part, [Out] float[] output, UIntPtr capacity, out UIntPtr outCount);

        // Tokenizers
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_tokenizer_load(byte[] path, out TokenizerHandle outTokenizer);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_tokenizer_free(IntPtr tokenizer);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_model_tokenizer(ModelHandle model, out IntPtr outTokenizer);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_tokenize(TokenizerHandle tokenizer, byte[] text, UIntPtr len, int addSpecial, [Out] int[] outTokens, UIntPtr capacity, out UIntPtr outCount);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_detokenize(TokenizerHandle tokenizer, int[] tokens, UIntPtr nTokens, int skipSpecial, [Out] byte[] outText, UIntPtr capacity, out UIntPtr outLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_token_bytes(TokenizerHandle tokenizer, int token, [Out] byte[] outBytes, UIntPtr capacity, out UIntPtr outLen);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_tokenizer_vocab_size(TokenizerHandle tokenizer, out int outSize);

        // Generation parameters
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_create(out GenParamsHandle outParams);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_gen_params_destroy(IntPtr parameters);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_temperature(GenParamsHandle parameters, float temperature);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_greedy(GenParamsHandle parameters);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_top_k(GenParamsHandle parameters, int topK);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_top_p(GenParamsHandle parameters, float topP);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_min_p(GenParamsHandle parameters, float minP);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_repeat_penalty(GenParamsHandle parameters, float penalty, int lastN);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_presence_penalty(GenParamsHandle parameters, float penalty);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_frequency_penalty(GenParamsHandle parameters, float penalty);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_seed(GenParamsHandle parameters, ulong seed);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_add_logit_bias(GenParamsHandle parameters, int token, float bias);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_max_tokens(GenParamsHandle parameters, int maxTokens);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_add_stop_token(GenParamsHandle parameters, int token);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_add_stop_string(GenParamsHandle parameters, byte[] text);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_ignore_eos(GenParamsHandle parameters, int ignore);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_gen_params_set_add_special(GenParamsHandle parameters, int add);

        // Generation
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_create(SessionHandle session, GenParamsHandle parameters, out GenerationHandle outGeneration);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_generation_free(IntPtr generation);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_push_text(GenerationHandle generation, byte[] text, UIntPtr len);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_push_tokens(GenerationHandle generation, int[] tokens, UIntPtr nTokens);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_next(GenerationHandle generation, out int outToken, [Out] byte[] piece, UIntPtr capacity, out UIntPtr outLen, out FinishReason outFinish);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_run(GenerationHandle generation, PieceCallback callback, IntPtr userData, out FinishReason outFinish);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_cancel(GenerationHandle generation);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_generation_stat(GenerationHandle generation, GenStat stat, out double outValue);

        // Streaming engine
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_params_create(out EngineParamsHandle outParams);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_engine_params_destroy(IntPtr parameters);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_params_set_max_batch(EngineParamsHandle parameters, int maxBatch);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_params_set_max_streams(EngineParamsHandle parameters, int maxStreams);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_params_set_prefill_chunk(EngineParamsHandle parameters, int tokens);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_params_set_prefill_budget(EngineParamsHandle parameters, int tokens);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_params_set_queue_capacity(EngineParamsHandle parameters, int events);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_create(ModelHandle model, EngineParamsHandle parameters, out EngineHandle outEngine);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_create(ModelHandle model, IntPtr parameters, out EngineHandle outEngine);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_engine_free(IntPtr engine);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_submit(EngineHandle engine, GenParamsHandle parameters, SessionHandle prefix, StreamCallback callback, IntPtr userData, out StreamHandle outStream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_submit(EngineHandle engine, GenParamsHandle parameters, IntPtr prefix, StreamCallback callback, IntPtr userData, out StreamHandle outStream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern void m3_stream_free(IntPtr stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_stream_push_text(StreamHandle stream, byte[] text, UIntPtr len);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_stream_push_tokens(StreamHandle stream, int[] tokens, UIntPtr nTokens);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_stream_next(StreamHandle stream, int timeoutMs, out int outToken, [Out] byte[] piece, UIntPtr capacity, out UIntPtr outLen, out FinishReason outFinish);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_stream_cancel(StreamHandle stream);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_stream_stat(StreamHandle stream, GenStat stat, out double outValue);
        [DllImport(Library, CallingConvention = Cdecl)] internal static extern Status m3_engine_stat(EngineHandle engine, EngineStat stat, out long outValue);

        /// <summary><c>m3_piece_callback</c>: called on the thread that called m3_generation_run.</summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int PieceCallback(IntPtr userData, int token, IntPtr piece, UIntPtr pieceLen);

        /// <summary>
        /// <c>m3_stream_callback</c>: called on an engine's scheduler thread for each output event
        /// of a stream submitted with it. The binding submits pull streams only (a null callback).
        /// </summary>
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int StreamCallback(IntPtr userData, int token, IntPtr piece, UIntPtr pieceLen, FinishReason finish);
    }
}
