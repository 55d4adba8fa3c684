namespace Mamba3Rt
{
    /// <summary>The result of a C call (<c>m3_status</c>).</summary>
    public enum Status
    {
        /// <summary>Success.</summary>
        Ok = 0,
        /// <summary>NULL handle, bad size, out-of-range token id ...</summary>
        InvalidArgument = 1,
        /// <summary>A file is missing or cannot be read.</summary>
        Io = 2,
        /// <summary>Malformed JSON, corrupt checkpoint, wrong tensor shape, bad state blob.</summary>
        Format = 3,
        /// <summary>A valid configuration this runtime does not run.</summary>
        Unsupported = 4,
        /// <summary>Memory could not be allocated.</summary>
        OutOfMemory = 5,
        /// <summary>The requested backend is not built in or has no device.</summary>
        BackendUnavailable = 6,
        /// <summary>A buffer was too small (the binding sizes its buffers itself).</summary>
        BufferTooSmall = 7,
        /// <summary>A state blob or session belongs to another model.</summary>
        ModelMismatch = 8,
        /// <summary>The session is in use by another thread.</summary>
        SessionBusy = 9,
        /// <summary>A bug in the library.</summary>
        Internal = 10,
        /// <summary>A configured limit was reached (e.g. an engine's MaxStreams, a model's MaxSessions).</summary>
        LimitExceeded = 11,
        /// <summary>Nothing arrived within the timeout.</summary>
        Timeout = 12,
        /// <summary>A GPU failed during an earlier call on this session: reset it or restore a saved state.</summary>
        StateLost = 13,
    }

    /// <summary>Where a model runs (<c>m3_backend</c>).</summary>
    public enum Backend
    {
        /// <summary>The best available: CUDA, then Vulkan, then CPU.</summary>
        Auto = 0,
        /// <summary>The CPU backend.</summary>
        Cpu = 1,
        /// <summary>Vulkan compute.</summary>
        Vulkan = 2,
        /// <summary>CUDA.</summary>
        Cuda = 3,
        /// <summary>The scalar float32 oracle the fast paths are tested against.</summary>
        CpuReference = 4,
    }

    /// <summary>How the decay rate A is computed (<c>m3_a_activation</c>).</summary>
    public enum AActivation
    {
        /// <summary>config.json's ssm_cfg.A_activation (default "heavy_tail").</summary>
        FromConfig = 0,
        /// <summary>The official code's activation since 2026-06.</summary>
        HeavyTail = 1,
        /// <summary>The original release's activation.</summary>
        Softplus = 2,
    }

    /// <summary>Integer properties of a model (<c>m3_model_info_key</c>).</summary>
    public enum InfoKey
    {
        /// <summary>Layers.</summary>
        NLayer = 0,
        /// <summary>Model width.</summary>
        DModel = 1,
        /// <summary>Token ids are 0 .. VocabSize-1.</summary>
        VocabSize = 2,
        /// <summary>Columns of every logits row.</summary>
        VocabPadded = 3,
        /// <summary>expand * d_model.</summary>
        DInner = 4,
        /// <summary>Heads.</summary>
        NHeads = 5,
        /// <summary>Head dimension.</summary>
        HeadDim = 6,
        /// <summary>State dimension.</summary>
        DState = 7,
        /// <summary>Groups.</summary>
        NGroups = 8,
        /// <summary>1 for SISO.</summary>
        MimoRank = 9,
        /// <summary>1 for MIMO models.</summary>
        IsMimo = 10,
        /// <summary>Rotary angles per head.</summary>
        NRopeAngles = 11,
        /// <summary>1 if the output projection is normalised.</summary>
        IsOutprojNorm = 12,
        /// <summary>0 when the blocks have no MLP.</summary>
        MlpHidden = 13,
        /// <summary>1 if the head is tied to the embedding.</summary>
        TieEmbeddings = 14,
        /// <summary>An <see cref="Mamba3Rt.AActivation"/> value (never FromConfig).</summary>
        AActivation = 15,
        /// <summary>The <see cref="Mamba3Rt.Backend"/> the model runs on.</summary>
        Backend = 16,
        /// <summary>Recurrent state per session, bytes (constant).</summary>
        StateBytes = 17,
        /// <summary>Size of a <see cref="Session.Snapshot"/> blob.</summary>
        StateBlobBytes = 18,
        /// <summary>Parameters (tied embedding counted once).</summary>
        NParams = 19,
        /// <summary>Bytes of weights as stored.</summary>
        WeightBytes = 20,
        /// <summary>CPU threads the backend computes with.</summary>
        Threads = 21,
        /// <summary>A <see cref="Mamba3Rt.WeightType"/> value: how the block matrices are stored.</summary>
        WeightType = 22,
        /// <summary>Sessions alive now on the model (forks, engine streams and sessions that outlive the model included).</summary>
        LiveSessions = 23,
        /// <summary>The limit set with <see cref="ModelOptions.MaxSessions"/>; 0 = none.</summary>
        MaxSessions = 24,
    }

    /// <summary>How the block matrices are stored (<c>m3_weight_type</c>).</summary>
    public enum WeightType
    {
        /// <summary>float32.</summary>
        F32 = 0,
        /// <summary>float16.</summary>
        F16 = 1,
        /// <summary>bfloat16.</summary>
        Bf16 = 2,
        /// <summary>int8 with an f16 scale per 32 weights.</summary>
        Int8 = 3,
        /// <summary>4-bit with an f16 scale per 32 weights.</summary>
        Q4 = 4,
    }

    /// <summary>Which logits a feed returns (<c>m3_logits_mode</c>).</summary>
    public enum LogitsMode
    {
        /// <summary>Only update the state.</summary>
        None = 0,
        /// <summary>One row: the last position.</summary>
        Last = 1,
        /// <summary>One row per fed token.</summary>
        All = 2,
    }

    /// <summary>Parts of one layer's state (<c>m3_state_part</c>).</summary>
    public enum StatePart
    {
        /// <summary>[n_heads, n_rope_angles] accumulated rotary angles.</summary>
        Angle = 0,
        /// <summary>[n_heads, headdim, d_state] the matrix state.</summary>
        Ssm = 1,
        /// <summary>[mimo_rank, n_heads, d_state] key of the last token.</summary>
        K = 2,
        /// <summary>[n_heads, headdim] x of the last token.</summary>
        V = 3,
    }

    /// <summary>Why a turn ended (<c>m3_finish_reason</c>).</summary>
    public enum FinishReason
    {
        /// <summary>Still running.</summary>
        None = 0,
        /// <summary>An end-of-sequence token was sampled (not emitted).</summary>
        Eos = 1,
        /// <summary>A stop token was sampled (not emitted).</summary>
        StopToken = 2,
        /// <summary>A stop string appeared (cut from the output).</summary>
        StopString = 3,
        /// <summary>MaxTokens tokens were produced this turn.</summary>
        MaxTokens = 4,
        /// <summary>Cancelled: Cancel, a CancellationToken or a callback.</summary>
        Cancelled = 5,
    }

    /// <summary>Generation statistics (<c>m3_gen_stat</c>).</summary>
    public enum GenStat
    {
        /// <summary>Tokens fed (prompt and pushed input).</summary>
        PromptTokens = 0,
        /// <summary>Tokens produced.</summary>
        GeneratedTokens = 1,
        /// <summary>Milliseconds from the first call to the first token.</summary>
        TtftMs = 2,
        /// <summary>Fed tokens per second of feeding.</summary>
        PrefillTokS = 3,
        /// <summary>Produced tokens per second of decoding and sampling.</summary>
        DecodeTokS = 4,
    }

    /// <summary>Engine statistics (<c>m3_engine_stat_key</c>).</summary>
    public enum EngineStat
    {
        /// <summary>Streams submitted and not yet freed.</summary>
        LiveStreams = 0,
        /// <summary>Streams in the last step (prefilling or decoding).</summary>
        RunningStreams = 1,
        /// <summary>Streams with work, left out of the last step by MaxBatch.</summary>
        WaitingStreams = 2,
        /// <summary>Streams with work, left out because their output queue was full.</summary>
        PausedStreams = 3,
        /// <summary>Scheduler steps run.</summary>
        Steps = 4,
        /// <summary>Tokens sampled, all streams.</summary>
        GeneratedTokens = 5,
        /// <summary>Input tokens fed, all streams.</summary>
        PromptTokens = 6,
        /// <summary>Streams in the last batched decode.</summary>
        LastBatch = 7,
    }
}
