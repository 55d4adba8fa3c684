using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Threading;
using System.Threading.Tasks;

namespace Mamba3Rt.Tests
{
    /// <summary>The binding against the bundled model, through the real library.</summary>
    public static class ApiTests
    {
        private static Model Load() => Model.Load(Paths.ModelDir);

        // The CPU backend: there batching changes no result (GPU backends round batched products
        // differently, so an engine stream there matches a generation only up to rounding).
        private static Model LoadCpu() => Model.Load(Paths.ModelDir, new ModelOptions { Backend = Backend.Cpu });

        private static GenParams Greedy(int maxTokens) => new GenParams().Greedy().MaxTokens(maxTokens);

        private static int ArgMax(float[] row, int vocab)
        {
            int best = 0;
            for (int i = 1; i < vocab; i++)
                if (row[i] > row[best]) best = i;
            return best;
        }

        private static float MaxDifference(float[] a, float[] b, int offsetB = 0)
        {
            float max = 0;
            for (int i = 0; i < a.Length; i++) max = Math.Max(max, Math.Abs(a[i] - b[offsetB + i]));
            return max;
        }

        private static string Text(IEnumerable<Piece> pieces) => string.Concat(pieces.Select(p => p.Text));

        private static string Tokens(IEnumerable<Piece> pieces) => string.Join(",", pieces.Where(p => p.Token >= 0).Select(p => p.Token));

        private static KeyValuePair<string, Action> Case(string name, Action a) => new KeyValuePair<string, Action>(name, a);

        public static IEnumerable<KeyValuePair<string, Action>> Cases()
        {
            yield return Case("library: version, ABI and where it was loaded from", () =>
            {
                Assert.Equal(1u, Library.AbiVersion, "ABI version");
                Assert.True(Library.Version.Split('.').Length >= 3, "version " + Library.Version);
                Assert.Equal("cpu-reference", Library.BackendName(Backend.CpuReference), "backend name");
                Library.EnsureBackendAvailable(Backend.Cpu);
                string file = Environment.GetEnvironmentVariable("MAMBA3RT_LIB");
                if (!string.IsNullOrEmpty(file)) Assert.Equal(file, NativeLibraryLoader.LoadedFrom, "loaded from $MAMBA3RT_LIB");
            });

            yield return Case("errors carry the C message", () =>
            {
                Assert.Fails(Status.Io, "/nonexistent/model-dir", () => Model.Load("/nonexistent/model-dir"), "missing model");
                Assert.Fails(Status.InvalidArgument, "NUL", () => Model.Load("bad\0path"), "NUL in a path");
                Assert.Fails(Status.InvalidArgument, "n_threads", () => Model.Load(Paths.ModelDir, new ModelOptions { Threads = 5000 }), "threads");
                Assert.Fails(Status.Io, "tokenizer.json", () => Tokenizer.Load("/nonexistent/tokenizer.json"), "missing tokenizer");
                Assert.Throws<ArgumentNullException>(() => Model.Load(null), "null directory");
            });

            yield return Case("model: info and options", () =>
            {
                using (var model = Model.Load(Paths.ModelDir, new ModelOptions { Backend = Backend.Cpu, Threads = 1 }))
                {
                    Assert.Equal(1L, model.Info(InfoKey.Threads), "threads");
                    Assert.Equal(WeightType.F16, model.WeightType, "the bundled model is stored as f16");
                    Assert.True(model.VocabSize > 0 && model.VocabPadded >= model.VocabSize, "vocabulary sizes");
                    Assert.True(model.Info(InfoKey.StateBlobBytes) > model.Info(InfoKey.StateBytes), "blob bigger than state");
                    Assert.Fails(Status.InvalidArgument, "info key", () => model.Info((InfoKey)999), "unknown key");
                    Assert.Equal("CPU", model.DeviceName, "device name");
                }
            });

            yield return Case("model: MaxSessions and MaxTensorBytes limits", () =>
            {
                using (var model = Model.Load(Paths.ModelDir, new ModelOptions { MaxSessions = 2 }))
                using (var a = model.CreateSession())
                {
                    Assert.Equal(2, model.MaxSessions, "max sessions");
                    var b = model.CreateSession();
                    Assert.Equal(2, model.LiveSessions, "live sessions");
                    Assert.Fails(Status.LimitExceeded, "max_sessions", () => model.CreateSession(), "a third session");
                    Assert.Fails(Status.LimitExceeded, "max_sessions", () => a.Fork(), "a fork beyond the limit");
                    using (var engine = model.CreateEngine())
                        Assert.Fails(Status.LimitExceeded, "max_sessions", () => engine.Submit(), "a stream beyond the limit");
                    Assert.Equal(2L, model.Info(InfoKey.LiveSessions), "failed creates change nothing");
                    b.Dispose();
                    Assert.Equal(1, model.LiveSessions, "live sessions after Dispose");
                    using (a.Fork()) // the place was released
                        Assert.Equal(2, model.LiveSessions, "live sessions with the fork");
                }
                using (var model = Load())
                    Assert.Equal(0, model.MaxSessions, "no limit by default");
                Assert.Fails(Status.InvalidArgument, "max_sessions", () => Model.Load(Paths.ModelDir, new ModelOptions { MaxSessions = -1 }), "negative max sessions");

                Assert.Fails(Status.LimitExceeded, "max_tensor_bytes", () => Model.Load(Paths.ModelDir, new ModelOptions { MaxTensorBytes = 1 }), "a 1-byte tensor limit");
                Assert.Fails(Status.InvalidArgument, "max_bytes", () => Model.Load(Paths.ModelDir, new ModelOptions { MaxTensorBytes = -1 }), "negative max tensor bytes");
                using (Model.Load(Paths.ModelDir, new ModelOptions { MaxTensorBytes = 0 })) { } // no limit
            });

            yield return Case("model: device selection", () =>
            {
                Assert.Fails(Status.InvalidArgument, "255", () => Model.Load(Paths.ModelDir, new ModelOptions { Device = new string('x', 256) }), "long device");
                Assert.Fails(Status.InvalidArgument, "NUL", () => Model.Load(Paths.ModelDir, new ModelOptions { Device = "a\0b" }), "NUL in a device");
                // The CPU backends ignore the device.
                using (var model = Model.Load(Paths.ModelDir, new ModelOptions { Backend = Backend.Cpu, Device = "no-such-gpu-7f3a" }))
                    Assert.Equal("CPU", model.DeviceName, "CPU device name");
                bool vulkan = true;
                try { Library.EnsureBackendAvailable(Backend.Vulkan); } catch (Mamba3RtException) { vulkan = false; }
                if (!vulkan) return;
                Assert.Fails(Status.BackendUnavailable, "no-such-gpu-7f3a", () => Model.Load(Paths.ModelDir, new ModelOptions { Backend = Backend.Vulkan, Device = "no-such-gpu-7f3a" }), "unmatched device");
                using (var model = Model.Load(Paths.ModelDir, new ModelOptions { Backend = Backend.Vulkan, Device = "0" }))
                    Assert.True(model.DeviceName.Length > 0, "Vulkan device name");
            });

            yield return Case("tokenizer: round trip, owned and borrowed", () =>
            {
                using (var model = Load())
                using (var tokenizer = model.GetTokenizer())
                using (var owned = Tokenizer.Load(Path.Combine(Paths.ModelDir, "tokenizer.json")))
                {
                    const string text = "The president said that naïve café-goers like “quotes”.";
                    int[] ids = tokenizer.Encode(text);
                    Assert.True(ids.Length > 0, "ids");
                    Assert.Equal(text, tokenizer.Decode(ids), "decode");
                    byte[] joined = ids.SelectMany(tokenizer.TokenBytes).ToArray();
                    Assert.Equal(text, System.Text.Encoding.UTF8.GetString(joined), "token bytes");
                    Assert.Fails(Status.InvalidArgument, "out of range", () => tokenizer.TokenBytes(tokenizer.VocabSize), "token id");
                    Assert.True(owned.Encode(text).SequenceEqual(ids), "owned tokenizer ids");
                }
            });

            yield return Case("disposed objects throw ObjectDisposedException; holders keep handles alive", () =>
            {
                long before = Library.LiveHandles;
                var model = Load();
                var tokenizer = model.GetTokenizer();
                var session = model.CreateSession();
                var parameters = Greedy(3);
                var generation = session.StartGeneration(parameters);
                parameters.Dispose(); // the options were copied
                model.Dispose();
                // The borrowed tokenizer holds the model handle: still usable, model not yet freed.
                Assert.True(tokenizer.Encode("still works").Length > 0, "tokenizer after model dispose");
                Assert.Throws<ObjectDisposedException>(() => model.CreateSession(), "session of a disposed model");
                tokenizer.Dispose();
                Assert.Throws<ObjectDisposedException>(() => tokenizer.Encode("x"), "disposed tokenizer");
                session.Dispose();
                // The generation holds its session's handle.
                generation.PushText("Hello");
                Assert.True(generation.Stream().Any(), "generation after session dispose");
                Assert.Throws<ObjectDisposedException>(() => session.Step(1), "disposed session");
                generation.Dispose();
                generation.Dispose();
                generation.Cancel(); // a no-op
                Assert.Throws<ObjectDisposedException>(() => generation.PushText("x"), "disposed generation");
                Assert.Equal(before, Library.LiveHandles, "all released");
            });

            yield return Case("session: feed equals steps; batched decode equals single steps", () =>
            {
                using (var model = Load())
                using (var tokenizer = model.GetTokenizer())
                using (var all = model.CreateSession())
                using (var stepped = model.CreateSession())
                using (var a = model.CreateSession())
                using (var b = model.CreateSession())
                {
                    int padded = model.VocabPadded;
                    int[] tokens = tokenizer.Encode("It was a bright cold day");
                    float[] rows = all.FeedLogits(tokens, LogitsMode.All);
                    Assert.Equal(tokens.Length * padded, rows.Length, "rows");
                    for (int i = 0; i < tokens.Length; i++)
                        Assert.True(MaxDifference(stepped.Step(tokens[i]), rows, i * padded) < 1e-3f, "position " + i);
                    Assert.Equal((long)tokens.Length, stepped.TokenCount, "token count");

                    a.Feed(tokens.Take(2).ToArray());
                    b.Feed(tokens.Take(3).ToArray());
                    using (var aAlone = a.Fork())
                    using (var bAlone = b.Fork())
                    {
                        float[] batched = Session.DecodeBatch(new[] { a, b }, new[] { tokens[2], tokens[3] });
                        float[] expected = aAlone.Step(tokens[2]).Concat(bAlone.Step(tokens[3])).ToArray();
                        Assert.True(MaxDifference(expected, batched) < 1e-3f, "batched");
                    }
                    Assert.Fails(Status.InvalidArgument, "twice", () => Session.DecodeBatch(new[] { a, a }, new[] { 1, 2 }), "duplicate");
                    Assert.Fails(Status.InvalidArgument, "tokens", () => Session.DecodeBatch(new[] { a }, new[] { 1, 2 }), "lengths");
                }
            });

            yield return Case("session: snapshot, restore, fork", () =>
            {
                using (var model = Load())
                using (var session = model.CreateSession())
                {
                    session.Feed(new[] { 10, 20, 30 });
                    byte[] blob = session.Snapshot();
                    Assert.Equal(model.Info(InfoKey.StateBlobBytes), (long)blob.Length, "blob size");
                    using (var fork = session.Fork())
                    {
                        float[] after = session.Step(40);
                        session.Restore(blob);
                        Assert.Equal(0f, MaxDifference(after, session.Step(40)), "restored");
                        Assert.Equal(0f, MaxDifference(after, fork.Step(40)), "fork");
                        Assert.True(fork.ReadState(0, StatePart.Ssm).Length > 0, "state part");
                    }
                    byte[] damaged = (byte[])blob.Clone();
                    damaged[damaged.Length - 1] ^= 0xff;
                    long count = session.TokenCount;
                    Assert.Fails(Status.Format, "", () => session.Restore(damaged), "damaged blob");
                    Assert.Fails(Status.Format, "", () => session.Restore(new byte[] { 1, 2, 3 }), "garbage blob");
                    Assert.Equal(count, session.TokenCount, "unchanged after failed restores");
                    session.Reset();
                    Assert.Equal(0L, session.TokenCount, "reset");
                }
            });

            yield return Case("session: bad tokens leave it unchanged", () =>
            {
                using (var model = Load())
                using (var session = model.CreateSession())
                {
                    session.Feed(new[] { 1, 2 });
                    Assert.Fails(Status.InvalidArgument, "out of range", () => session.Feed(new[] { 3, model.VocabSize }), "feed");
                    Assert.Fails(Status.InvalidArgument, "", () => session.Step(-5), "step");
                    Assert.Equal(2L, session.TokenCount, "token count");
                }
            });

            yield return Case("generation: greedy output equals argmax of the session's logits", () =>
            {
                const string prompt = "The president said that";
                using (var model = Load())
                using (var tokenizer = model.GetTokenizer())
                using (var session = model.CreateSession())
                using (var reference = model.CreateSession())
                using (var parameters = Greedy(12))
                using (var gen = session.StartGeneration(parameters))
                {
                    gen.PushText(prompt);
                    List<Piece> pieces = gen.Pieces().ToList();
                    Assert.Equal(FinishReason.MaxTokens, gen.Finish, "finish");
                    Assert.Equal(12.0, gen.Stat(GenStat.GeneratedTokens), "generated");
                    int[] got = pieces.Where(p => p.Token >= 0).Select(p => p.Token).ToArray();

                    float[] logits = reference.FeedLogits(tokenizer.Encode(prompt, true), LogitsMode.Last);
                    var want = new List<int>();
                    for (int i = 0; i < 12; i++)
                    {
                        int next = ArgMax(logits, model.VocabSize);
                        want.Add(next);
                        logits = reference.FeedLogits(new[] { next }, LogitsMode.Last); // as the generation feeds it
                    }
                    Assert.Equal(string.Join(",", want), string.Join(",", got), "tokens");
                    Assert.Equal(tokenizer.Decode(want.ToArray()), Text(pieces), "text");
                }
            });

            yield return Case("generation: Stream, Next, NextAsync, Run and RunAsync agree", () =>
            {
                using (var model = Load())
                {
                    Func<Func<Generation, string>, string> produce = read =>
                    {
                        using (var session = model.CreateSession())
                        using (var parameters = Greedy(15))
                        using (var gen = session.StartGeneration(parameters))
                        {
                            gen.PushText("Once upon a time");
                            string text = read(gen);
                            Assert.Equal(FinishReason.MaxTokens, gen.Finish, "finish");
                            Assert.True(gen.Next() == null, "nothing after the turn");
                            return text;
                        }
                    };
                    string streamed = produce(g => string.Concat(g.Stream()));
                    Assert.True(streamed.Length > 0, "streamed text");
                    Assert.Equal(streamed, produce(g =>
                    {
                        string s = "";
                        Piece? p;
                        while ((p = g.Next()).HasValue) s += p.Value.Text;
                        return s;
                    }), "Next");
                    Assert.Equal(streamed, produce(g =>
                    {
                        string s = "";
                        Piece? p;
                        while ((p = g.NextAsync().Result).HasValue) s += p.Value.Text;
                        return s;
                    }), "NextAsync");
                    Assert.Equal(streamed, produce(g =>
                    {
                        string s = "";
                        int thread = Thread.CurrentThread.ManagedThreadId;
                        g.Run(p =>
                        {
                            Assert.Equal(thread, Thread.CurrentThread.ManagedThreadId, "callback thread");
                            s += p.Text;
                            return true;
                        });
                        return s;
                    }), "Run");
                    Assert.Equal(streamed, produce(g =>
                    {
                        var s = new System.Text.StringBuilder();
                        FinishReason finish = g.RunAsync(p => s.Append(p.Text)).Result;
                        Assert.Equal(FinishReason.MaxTokens, finish, "RunAsync finish");
                        return s.ToString();
                    }), "RunAsync");
                }
            });

            yield return Case("generation: CancellationToken ends Stream, Next and RunAsync", () =>
            {
                using (var model = Load())
                using (var parameters = new GenParams().Greedy().MaxTokens(100000).IgnoreEos())
                {
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(parameters))
                    using (var cts = new CancellationTokenSource())
                    {
                        gen.PushText("The");
                        int n = 0;
                        Assert.Throws<OperationCanceledException>(() =>
                        {
                            foreach (string piece in gen.Stream(cts.Token))
                                if (++n == 3) cts.Cancel();
                        }, "stream");
                        Assert.Equal(FinishReason.Cancelled, gen.Finish, "finish after cancel");
                        Assert.True(gen.Stat(GenStat.GeneratedTokens) < 100000, "stopped early");
                        gen.PushText(" and"); // a new turn runs normally
                        Assert.True(gen.Next().HasValue, "next turn");
                    }
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(parameters))
                    {
                        gen.PushText("The");
                        var cancelled = new CancellationToken(true);
                        Assert.Throws<OperationCanceledException>(() => gen.Next(cancelled), "pre-cancelled token");
                        Assert.Equal(FinishReason.Cancelled, gen.Finish, "the turn ended");
                    }
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(parameters))
                    using (var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(150)))
                    {
                        gen.PushText("The");
                        Task<FinishReason> task = gen.RunAsync(p => { }, cts.Token);
                        var e = Assert.Throws<AggregateException>(() => task.Wait(), "RunAsync");
                        Assert.True(e.InnerException is OperationCanceledException, "inner " + e.InnerException);
                        Assert.Equal(FinishReason.Cancelled, gen.Finish, "RunAsync finish");
                    }
                }
            });

            yield return Case("generation: callback stop and exception", () =>
            {
                using (var model = Load())
                using (var session = model.CreateSession())
                using (var parameters = Greedy(50))
                using (var gen = session.StartGeneration(parameters))
                {
                    gen.PushText("The");
                    int n = 0;
                    Assert.Equal(FinishReason.Cancelled, gen.Run(p => ++n < 3), "stopped by the callback");
                    Assert.Equal(3, n, "pieces before stopping");
                    gen.PushText(" next");
                    var e = Assert.Throws<InvalidOperationException>(() => gen.Run(p => { throw new InvalidOperationException("boom in callback"); }), "callback exception");
                    Assert.Equal("boom in callback", e.Message, "the callback's own exception");
                    gen.PushText(" again");
                    Assert.True(gen.Next().HasValue, "usable after the exception");
                }
            });

            yield return Case("generation: several turns and a stop string", () =>
            {
                using (var model = Load())
                using (var parameters = Greedy(8))
                {
                    string first;
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(parameters))
                    {
                        gen.PushText("The president said that");
                        first = string.Concat(gen.Stream());
                        gen.PushText(" and");
                        Assert.True(string.Concat(gen.Stream()).Length > 0, "second turn");
                        Assert.True(gen.Session.TokenCount > 8, "the session absorbed the first turn");
                    }
                    string[] words = first.Split(new[] { ' ' }, StringSplitOptions.RemoveEmptyEntries);
                    Assert.True(words.Length >= 3, "first turn: " + first);
                    string stop = " " + words[2];
                    using (var withStop = Greedy(8).StopString(stop))
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(withStop))
                    {
                        gen.PushText("The president said that");
                        Assert.Equal(first.Substring(0, first.IndexOf(stop, StringComparison.Ordinal)), string.Concat(gen.Stream()), "cut at the stop string");
                        Assert.Equal(FinishReason.StopString, gen.Finish, "finish");
                    }
                }
            });

            yield return Case("generation: input and option errors", () =>
            {
                using (var model = Load())
                using (var session = model.CreateSession())
                using (var parameters = Greedy(4))
                {
                    int vocab = model.VocabSize;
                    using (var gen = session.StartGeneration(parameters))
                    {
                        Assert.Fails(Status.InvalidArgument, "push a prompt", () => gen.Next(), "next before input");
                        Assert.Fails(Status.InvalidArgument, "empty", () => gen.PushText(""), "empty text");
                        Assert.Fails(Status.InvalidArgument, "out of range", () => gen.PushTokens(1, vocab + 7), "bad token");
                        gen.PushTokens(1, 2, 3);
                        Assert.Equal(4, gen.Pieces().Count(), "pieces");
                    }
                    using (var p = new GenParams())
                    {
                        Assert.Fails(Status.InvalidArgument, "top_p", () => p.TopP(0), "top_p");
                        Assert.Fails(Status.InvalidArgument, "temperature", () => p.Temperature(float.NaN), "temperature");
                        Assert.Fails(Status.InvalidArgument, "max_tokens", () => p.MaxTokens(-1), "max tokens");
                        Assert.Fails(Status.InvalidArgument, "NUL", () => p.StopString("a\0b"), "NUL");
                        Assert.Fails(Status.InvalidArgument, "empty", () => p.StopString(""), "empty stop string");
                        p.StopToken(vocab + 1);
                        Assert.Fails(Status.InvalidArgument, "stop token", () => session.StartGeneration(p), "stop token out of range");
                    }
                }
            });

            yield return Case("model: shared by threads", () =>
            {
                using (var model = Load())
                {
                    Func<string> run = () =>
                    {
                        using (var session = model.CreateSession())
                        using (var parameters = Greedy(10))
                        using (var gen = session.StartGeneration(parameters))
                        {
                            gen.PushText("In the morning");
                            return string.Concat(gen.Stream());
                        }
                    };
                    Task<string>[] tasks = Enumerable.Range(0, 3).Select(_ => Task.Run(run)).ToArray();
                    string[] outputs = tasks.Select(t => t.Result).ToArray();
                    Assert.True(outputs[0].Length > 0 && outputs.All(o => o == outputs[0]), "outputs: " + string.Join(" | ", outputs));
                }
            });

            yield return Case("engine: a stream's greedy output equals the generation's, turn by turn", () =>
            {
                const string prompt = "The president said that";
                using (var model = LoadCpu())
                using (var parameters = Greedy(12))
                {
                    List<Piece> first, second;
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(parameters))
                    {
                        gen.PushText(prompt);
                        first = gen.Pieces().ToList();
                        gen.PushText(" And then");
                        second = gen.Pieces().ToList();
                    }
                    using (var engine = model.CreateEngine())
                    using (var stream = engine.Submit(parameters))
                    {
                        stream.PushText(prompt);
                        List<Piece> got = stream.Pieces().ToList();
                        Assert.Equal(FinishReason.MaxTokens, stream.Finish, "finish");
                        Assert.Equal(Tokens(first), Tokens(got), "tokens");
                        Assert.Equal(Text(first), Text(got), "text");
                        Assert.Equal(12.0, stream.Stat(GenStat.GeneratedTokens), "generated");
                        Assert.True(stream.Stat(GenStat.PromptTokens) > 0, "prompt tokens");
                        // Until new input arrives, the finish is reported again at once.
                        StreamEvent again;
                        Assert.True(stream.TryNext(TimeSpan.Zero, out again), "the finish, not a timeout");
                        Assert.Equal(-1, again.Token, "token after the turn");
                        Assert.Equal("", again.Text, "text after the turn");
                        Assert.Equal(FinishReason.MaxTokens, again.Finish, "finish after the turn");
                        Assert.True(!stream.Pieces().Any(), "no pieces after the turn");

                        // A dialogue turn continues from the stream's state, read event by event.
                        stream.PushText(" And then");
                        var events = new List<StreamEvent>();
                        do events.Add(stream.Next()); while (events[events.Count - 1].Finish == FinishReason.None);
                        Assert.Equal(Tokens(second), string.Join(",", events.Where(e => e.Token >= 0).Select(e => e.Token)), "second turn tokens");
                        Assert.Equal(Text(second), string.Concat(events.Select(e => e.Text)), "second turn text");
                        Assert.True(engine.Stat(EngineStat.Steps) > 0, "steps");
                        Assert.True(engine.Stat(EngineStat.GeneratedTokens) >= 24, "generated tokens");
                        Assert.Equal(1L, engine.Stat(EngineStat.LiveStreams), "live streams");
                    }
                }
            });

            yield return Case("engine: eight concurrent streams all finish with the generation's output", () =>
            {
                using (var model = LoadCpu())
                using (var parameters = Greedy(16).IgnoreEos())
                using (var engine = model.CreateEngine(new EngineOptions { MaxBatch = 8, QueueCapacity = 4 }))
                {
                    string[] prompts = Enumerable.Range(0, 8).Select(i => "Story number " + i + ": once upon a time").ToArray();
                    string[] expected = prompts.Select(p =>
                    {
                        using (var session = model.CreateSession())
                        using (var gen = session.StartGeneration(parameters))
                        {
                            gen.PushText(p);
                            return string.Concat(gen.Stream());
                        }
                    }).ToArray();
                    EngineStream[] streams = prompts.Select(p =>
                    {
                        EngineStream s = engine.Submit(parameters);
                        s.PushText(p);
                        return s;
                    }).ToArray();
                    try
                    {
                        Assert.Equal(8L, engine.Stat(EngineStat.LiveStreams), "live streams");
                        // Threads and Join rather than Task.Run and Result: Join orders each reader's
                        // last m3_stream_next before the disposals through Mono's pthread calls, which
                        // ThreadSanitizer sees (bindings/ci/tsan_suite.sh); Result on a task that has
                        // already finished does not.
                        var texts = new string[8];
                        var errors = new Exception[8];
                        Thread[] readers = Enumerable.Range(0, 8).Select(i => new Thread(() =>
                        {
                            try { texts[i] = Text(streams[i].Pieces()); }
                            catch (Exception e) { errors[i] = e; }
                        })).ToArray();
                        foreach (Thread t in readers) t.Start();
                        foreach (Thread t in readers) t.Join();
                        for (int i = 0; i < 8; i++)
                        {
                            if (errors[i] != null) throw new Exception("stream " + i + " reader failed", errors[i]);
                            Assert.Equal(expected[i], texts[i], "stream " + i);
                            Assert.Equal(FinishReason.MaxTokens, streams[i].Finish, "stream " + i + " finish");
                        }
                        Assert.True(engine.Stat(EngineStat.GeneratedTokens) >= 8 * 16, "generated tokens");
                    }
                    finally
                    {
                        foreach (EngineStream s in streams) s.Dispose();
                    }
                    Assert.Equal(0L, engine.Stat(EngineStat.LiveStreams), "live streams after Dispose");
                }
            });

            yield return Case("engine: limits, input errors, disposal", () =>
            {
                using (var model = LoadCpu())
                using (var other = Load())
                using (var foreign = other.CreateSession())
                using (var parameters = Greedy(4))
                {
                    Assert.Fails(Status.InvalidArgument, "max_batch", () => model.CreateEngine(new EngineOptions { MaxBatch = 0 }), "max batch");
                    Assert.Fails(Status.InvalidArgument, "queue_capacity", () => model.CreateEngine(new EngineOptions { QueueCapacity = -3 }), "queue capacity");
                    int vocab = model.VocabSize;
                    var engine = model.CreateEngine(new EngineOptions { MaxStreams = 2 });
                    EngineStream a = engine.Submit(parameters);
                    EngineStream b = engine.Submit();
                    Assert.Fails(Status.LimitExceeded, "max_streams", () => engine.Submit(parameters), "beyond MaxStreams");
                    b.Dispose();
                    using (engine.Submit(parameters)) // the slot was released
                        Assert.Equal(2L, engine.Stat(EngineStat.LiveStreams), "live streams");

                    StreamEvent e;
                    Assert.Fails(Status.InvalidArgument, "push a prompt", () => a.TryNext(TimeSpan.Zero, out e), "next before input");
                    Assert.Fails(Status.InvalidArgument, "empty", () => a.PushText(""), "empty text");
                    Assert.Fails(Status.InvalidArgument, "out of range", () => a.PushTokens(1, vocab), "bad token");
                    Assert.Throws<ArgumentOutOfRangeException>(() => a.TryNext(TimeSpan.FromMilliseconds(-5), out e), "negative timeout");
                    a.PushTokens(1, 2, 3);
                    Assert.Equal(4, a.Pieces().Count(), "pieces");
                    Assert.Fails(Status.ModelMismatch, "another model", () => engine.Submit(parameters, foreign), "foreign prefix");

                    b.Cancel(); // a no-op
                    Assert.Throws<ObjectDisposedException>(() => b.PushText("x"), "disposed stream");
                    Assert.Throws<ObjectDisposedException>(() => b.Next(), "next on a disposed stream");

                    // A stream outlives its engine: its running turn is cancelled and pushes fail.
                    using (var endless = new GenParams().Greedy().MaxTokens(100000).IgnoreEos())
                    using (EngineStream running = engine.Submit(endless))
                    {
                        running.PushText("The");
                        Assert.True(running.Next().Token >= 0, "first token");
                        engine.Dispose();
                        engine.Dispose();
                        Assert.Throws<ObjectDisposedException>(() => engine.Submit(parameters), "submit on a disposed engine");
                        Assert.Throws<ObjectDisposedException>(() => engine.Stat(EngineStat.Steps), "stat on a disposed engine");
                        running.Pieces().Count();
                        Assert.Equal(FinishReason.Cancelled, running.Finish, "cancelled by the engine's disposal");
                        Assert.Fails(Status.InvalidArgument, "engine", () => running.PushText(" more"), "push after the engine");
                    }
                    a.Dispose();
                }
            });

            yield return Case("engine: TryNext times out while the only batch place is taken", () =>
            {
                // One batch place, taken by a long prompt fed one token per step: a later stream
                // waits, so its reader times out, deterministically, until the first is cancelled.
                const string prompt = "The president said that";
                using (var model = LoadCpu())
                using (var parameters = Greedy(3))
                using (var engine = model.CreateEngine(new EngineOptions { MaxBatch = 1, PrefillChunk = 1, PrefillBudget = 1 }))
                using (EngineStream busy = engine.Submit(parameters))
                using (EngineStream waiting = engine.Submit(parameters))
                {
                    string expected;
                    using (var session = model.CreateSession())
                    using (var gen = session.StartGeneration(parameters))
                    {
                        gen.PushText(prompt);
                        expected = string.Concat(gen.Stream());
                    }
                    int vocab = model.VocabSize;
                    busy.PushTokens(Enumerable.Range(0, 8000).Select(i => (int)((long)i * 7919 % vocab)).ToArray());
                    waiting.PushText(prompt);
                    var deadline = DateTime.UtcNow.AddSeconds(20);
                    while (engine.Stat(EngineStat.WaitingStreams) != 1 && DateTime.UtcNow < deadline) Thread.Sleep(1);
                    Assert.Equal(1L, engine.Stat(EngineStat.WaitingStreams), "a stream waits");
                    var watch = System.Diagnostics.Stopwatch.StartNew();
                    StreamEvent e;
                    Assert.True(!waiting.TryNext(TimeSpan.FromMilliseconds(50), out e), "a timeout");
                    Assert.True(watch.ElapsedMilliseconds >= 45, "returned after " + watch.ElapsedMilliseconds + " ms");
                    Assert.True(!waiting.TryNext(TimeSpan.Zero, out e), "a poll");

                    busy.Cancel();
                    Assert.Equal(expected, Text(waiting.Pieces()), "the waiting stream's output");
                    StreamEvent end = busy.Next();
                    Assert.Equal(FinishReason.Cancelled, end.Finish, "the busy stream's finish");
                    Assert.Equal(-1, end.Token, "no token with the cancel");
                }
            });

            yield return Case("engine: prefix session, CancellationToken and Cancel from another thread", () =>
            {
                using (var model = LoadCpu())
                using (var tokenizer = model.GetTokenizer())
                using (var parameters = Greedy(10))
                using (var endless = new GenParams().Greedy().MaxTokens(100000).IgnoreEos())
                using (var prefix = model.CreateSession())
                using (var engine = model.CreateEngine())
                {
                    prefix.Feed(tokenizer.Encode("The president said that", true));
                    long nPrefix = prefix.TokenCount;
                    string expected;
                    using (var alone = prefix.Fork())
                    using (var gen = alone.StartGeneration(parameters))
                    {
                        gen.PushText(" the");
                        expected = string.Concat(gen.Stream());
                    }
                    using (EngineStream stream = engine.Submit(parameters, prefix))
                    {
                        stream.PushText(" the");
                        Assert.Equal(expected, Text(stream.Pieces()), "continued from the prefix");
                    }
                    Assert.Equal(nPrefix, prefix.TokenCount, "the prefix session is unchanged");

                    using (EngineStream stream = engine.Submit(endless))
                    using (var cts = new CancellationTokenSource())
                    {
                        stream.PushText("The");
                        int n = 0;
                        Assert.Throws<OperationCanceledException>(() =>
                        {
                            foreach (Piece p in stream.Pieces(cts.Token))
                                if (++n == 3) cts.Cancel();
                        }, "Pieces with a cancelled token");
                        Assert.Equal(FinishReason.Cancelled, stream.Finish, "finish");
                        Assert.True(stream.Stat(GenStat.GeneratedTokens) < 100000, "stopped early");

                        stream.PushText(" and"); // a new turn, cancelled from another thread
                        // A Thread and Join rather than Task.Run and Wait: Join orders the Cancel
                        // before the disposals through Mono's pthread calls, which ThreadSanitizer
                        // sees (bindings/ci/tsan_suite.sh); Wait on a finished task does not.
                        var canceller = new Thread(() =>
                        {
                            var deadline = DateTime.UtcNow.AddSeconds(20);
                            while (stream.Stat(GenStat.GeneratedTokens) < n + 3 && DateTime.UtcNow < deadline) Thread.Sleep(1);
                            stream.Cancel();
                        });
                        canceller.Start();
                        int count = stream.Pieces().Count();
                        canceller.Join();
                        Assert.True(count > 0 && count < 100000, "pieces before the cancel: " + count);
                        Assert.Equal(FinishReason.Cancelled, stream.Finish, "cancelled from another thread");
                    }
                }
            });

            yield return Case("finalizers release handles that were never disposed", () =>
            {
                long before = Library.LiveHandles;
                Abandon();
                Assert.True(Library.LiveHandles > before, "handles are alive before the collection");
                for (int i = 0; i < 20 && Library.LiveHandles != before; i++)
                {
                    GC.Collect();
                    GC.WaitForPendingFinalizers();
                }
                Assert.Equal(before, Library.LiveHandles, "after collections");
            });
        }

        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void Abandon()
        {
            var model = Load();
            var session = model.CreateSession();
            var gen = session.StartGeneration(Greedy(2));
            var engine = model.CreateEngine(new EngineOptions { MaxBatch = 4 });
            EngineStream stream = engine.Submit(Greedy(2), session);
            stream.PushText("Hi");
            stream.Pieces().ToList();
            engine.Submit();
            model.GetTokenizer().Encode("x");
            Tokenizer.Load(Path.Combine(Paths.ModelDir, "tokenizer.json"));
            gen.PushText("Hello");
            gen.Stream().ToList();
        }
    }
}
