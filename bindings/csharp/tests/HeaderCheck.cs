using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace Mamba3Rt.Tests
{
    /// <summary>
    /// Checks the DllImport declarations (NativeMethods, found by reflection) and the public
    /// enums against include/mamba3rt.h, parsed here: every header function must be declared
    /// with a compatible CLR type for each parameter and the return value, every declaration
    /// must name a header function, and each C enum must have exactly the values of its C#
    /// enum. A function or enum value added to or changed in the header without the same
    /// change here fails.
    /// </summary>
    public static class HeaderCheck
    {
        /// <summary>A C declaration with canonical ("east const") types, parameter names dropped.</summary>
        public sealed class CFunction
        {
            public string Return;
            public List<string> Parameters = new List<string>();
            public override string ToString() => Return + " (" + string.Join(", ", Parameters) + ")";
        }

        public sealed class CHeader
        {
            public Dictionary<string, CFunction> Functions = new Dictionary<string, CFunction>();
            public Dictionary<string, List<KeyValuePair<string, long>>> Enums = new Dictionary<string, List<KeyValuePair<string, long>>>();
            public Dictionary<string, CFunction> Callbacks = new Dictionary<string, CFunction>();
        }

        // --- parsing -------------------------------------------------------------------------

        public static string Canonical(string type)
        {
            var words = type.Replace("*", " * ").Split(new[] { ' ', '\t', '\n', '\r' }, StringSplitOptions.RemoveEmptyEntries).ToList();
            if (words.Count >= 2 && words[0] == "const")
            {
                words.RemoveAt(0);
                words.Insert(1, "const");
            }
            return string.Join(" ", words);
        }

        private static List<string> ParameterTypes(string list)
        {
            var types = new List<string>();
            foreach (string raw in list.Split(','))
            {
                string p = raw.Trim();
                if (p.Length == 0 || p == "void") continue;
                var words = p.Replace("*", " * ").Split(new[] { ' ', '\t', '\n', '\r' }, StringSplitOptions.RemoveEmptyEntries).ToList();
                string last = words[words.Count - 1];
                if (words.Count >= 2 && Regex.IsMatch(last, "^[A-Za-z_][A-Za-z0-9_]*$") && last != "const") words.RemoveAt(words.Count - 1);
                types.Add(Canonical(string.Join(" ", words)));
            }
            return types;
        }

        public static CHeader Parse(string text)
        {
            text = Regex.Replace(text, @"/\*.*?\*/", " ", RegexOptions.Singleline);
            text = Regex.Replace(text, @"//[^\n]*", " ");
            text = string.Join("\n", text.Split('\n').Where(l => !l.TrimStart().StartsWith("#", StringComparison.Ordinal)));
            var header = new CHeader();

            foreach (Match m in Regex.Matches(text, @"M3_API\s+([^;(]*?)\b([A-Za-z_][A-Za-z0-9_]*)\s*\(([^)]*)\)\s*;"))
                header.Functions[m.Groups[2].Value] = new CFunction { Return = Canonical(m.Groups[1].Value), Parameters = ParameterTypes(m.Groups[3].Value) };

            foreach (Match m in Regex.Matches(text, @"typedef\s+enum\s+([A-Za-z_][A-Za-z0-9_]*)[^{]*\{([^}]*)\}"))
            {
                var values = new List<KeyValuePair<string, long>>();
                foreach (string entry in m.Groups[2].Value.Split(','))
                {
                    string e = entry.Trim();
                    if (e.Length == 0) continue;
                    string[] kv = e.Split('=');
                    if (kv.Length != 2) throw new FormatException("enum value without an explicit number: " + e);
                    values.Add(new KeyValuePair<string, long>(kv[0].Trim(), long.Parse(kv[1].Trim())));
                }
                header.Enums[m.Groups[1].Value] = values;
            }

            foreach (Match m in Regex.Matches(text, @"typedef\s+([^;(]*?)\(\s*\*\s*([A-Za-z_][A-Za-z0-9_]*)\s*\)\s*\(([^)]*)\)\s*;"))
                header.Callbacks[m.Groups[2].Value] = new CFunction { Return = Canonical(m.Groups[1].Value), Parameters = ParameterTypes(m.Groups[3].Value) };
            return header;
        }

        public static uint AbiVersion(string text)
        {
            Match m = Regex.Match(text, @"#define\s+M3_ABI_VERSION\s+(\d+)");
            return m.Success ? uint.Parse(m.Groups[1].Value) : 0;
        }

        // --- C types -> CLR types --------------------------------------------------------------

        private static readonly Dictionary<string, Type> EnumTypes = new Dictionary<string, Type>
        {
            { "m3_status", typeof(Status) }, { "m3_backend", typeof(Backend) }, { "m3_a_activation", typeof(AActivation) },
            { "m3_model_info_key", typeof(InfoKey) }, { "m3_logits_mode", typeof(LogitsMode) }, { "m3_state_part", typeof(StatePart) },
            { "m3_finish_reason", typeof(FinishReason) }, { "m3_gen_stat", typeof(GenStat) }, { "m3_weight_type", typeof(WeightType) },
            { "m3_engine_stat_key", typeof(EngineStat) },
        };

        private static readonly Dictionary<string, Type> Scalars = new Dictionary<string, Type>
        {
            { "int", typeof(int) }, { "int32_t", typeof(int) }, { "uint32_t", typeof(uint) }, { "int64_t", typeof(long) },
            { "uint64_t", typeof(ulong) }, { "float", typeof(float) }, { "double", typeof(double) }, { "size_t", typeof(UIntPtr) },
            { "void", typeof(void) },
        };

        private static readonly Dictionary<string, string> HandleTypes = new Dictionary<string, string>
        {
            { "m3_model", "ModelHandle" }, { "m3_model_params", "ModelParamsHandle" }, { "m3_session", "SessionHandle" },
            { "m3_tokenizer", "TokenizerHandle" }, { "m3_gen_params", "GenParamsHandle" }, { "m3_generation", "GenerationHandle" },
            { "m3_engine", "EngineHandle" }, { "m3_engine_params", "EngineParamsHandle" }, { "m3_stream", "StreamHandle" },
        };

        // The C callback types and the delegates that carry them.
        private static readonly Dictionary<string, string> CallbackTypes = new Dictionary<string, string>
        {
            { "m3_piece_callback", "NativeMethods+PieceCallback" }, { "m3_stream_callback", "NativeMethods+StreamCallback" },
        };

        private static Type Named(string name) => typeof(Model).Assembly.GetType("Mamba3Rt." + name, true);

        /// <summary>Whether a CLR parameter or return type can carry this canonical C type.</summary>
        public static bool Compatible(string c, Type clr)
        {
            string[] words = c.Split(' ');
            string baseType = words[0];
            int stars = words.Count(w => w == "*");
            Type byRef = clr.IsByRef ? clr.GetElementType() : null;

            if (stars == 0)
            {
                Type expected;
                if (EnumTypes.TryGetValue(baseType, out expected)) return clr == expected;
                if (Scalars.TryGetValue(baseType, out expected)) return clr == expected;
                string callbackName;
                if (CallbackTypes.TryGetValue(baseType, out callbackName)) return clr == Named(callbackName);
                return false;
            }
            string handleName;
            bool isHandle = HandleTypes.TryGetValue(baseType, out handleName);
            if (stars == 1)
            {
                if (isHandle) return clr == Named(handleName) || clr == typeof(IntPtr);
                if (baseType == "char" || baseType == "void") return clr == typeof(byte[]) || clr == typeof(IntPtr) || (c == "char const *" && clr == typeof(string));
                if (c.EndsWith("const *", StringComparison.Ordinal))
                    return clr.IsArray && Compatible(baseType, clr.GetElementType());
                // A mutable pointer to a scalar or enum: an out/ref value or an output array.
                return (byRef != null && Compatible(baseType, byRef)) || (clr.IsArray && Compatible(baseType, clr.GetElementType()));
            }
            if (stars == 2 && isHandle)
            {
                if (c == baseType + " * const *") return clr == typeof(IntPtr[]); // an array of handles
                return byRef != null && (byRef == Named(handleName) || byRef == typeof(IntPtr)); // an out handle
            }
            return false;
        }

        // --- comparison ------------------------------------------------------------------------

        private static string Normalized(string s) => s.Replace("_", "").ToLowerInvariant();

        public static List<string> Differences(CHeader header, uint headerAbi)
        {
            var problems = new List<string>();
            Type native = Named("NativeMethods");
            var imports = native.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)
                .Where(m => (m.Attributes & MethodAttributes.PinvokeImpl) != 0 && m.GetCustomAttributes(typeof(DllImportAttribute), false).Length > 0)
                .Select(m => new { Method = m, Import = (DllImportAttribute)m.GetCustomAttributes(typeof(DllImportAttribute), false)[0] })
                .Where(x => x.Import.Value == (string)native.GetField("Library", BindingFlags.Static | BindingFlags.NonPublic).GetValue(null))
                .ToList();

            foreach (var x in imports)
            {
                string name = x.Import.EntryPoint ?? x.Method.Name;
                CFunction f;
                if (!header.Functions.TryGetValue(name, out f))
                {
                    problems.Add("DllImport " + name + " is not in the header");
                    continue;
                }
                ParameterInfo[] ps = x.Method.GetParameters();
                if (ps.Length != f.Parameters.Count)
                {
                    problems.Add(name + ": " + ps.Length + " parameters, the header has " + f.Parameters.Count + ": " + f);
                    continue;
                }
                if (!Compatible(f.Return, x.Method.ReturnType))
                    problems.Add(name + ": return type " + x.Method.ReturnType.Name + " does not carry " + f.Return);
                if (x.Import.CallingConvention != CallingConvention.Cdecl)
                    problems.Add(name + ": calling convention " + x.Import.CallingConvention);
                for (int i = 0; i < ps.Length; i++)
                    if (!Compatible(f.Parameters[i], ps[i].ParameterType))
                        problems.Add(name + ": parameter " + i + " (" + ps[i].Name + ") is " + ps[i].ParameterType.Name + ", the header has " + f.Parameters[i]);
            }
            var declared = new HashSet<string>(imports.Select(x => x.Import.EntryPoint ?? x.Method.Name));
            foreach (string name in header.Functions.Keys)
                if (!declared.Contains(name)) problems.Add("header function " + name + " has no DllImport");

            foreach (var e in header.Enums)
            {
                Type clr;
                if (!EnumTypes.TryGetValue(e.Key, out clr))
                {
                    problems.Add("header enum " + e.Key + " has no C# enum");
                    continue;
                }
                var clrValues = Enum.GetValues(clr).Cast<object>().ToDictionary(v => Convert.ToInt64(v), v => v.ToString());
                if (clrValues.Count != e.Value.Count)
                    problems.Add(e.Key + ": " + e.Value.Count + " values in the header, " + clrValues.Count + " in " + clr.Name);
                foreach (var kv in e.Value)
                {
                    string clrName;
                    if (!clrValues.TryGetValue(kv.Value, out clrName))
                        problems.Add(e.Key + ": " + kv.Key + " = " + kv.Value + " has no value in " + clr.Name);
                    else if (!Normalized(kv.Key).EndsWith(Normalized(clrName), StringComparison.Ordinal)) // M3_ERR_IO ~ Io
                        problems.Add(e.Key + ": " + kv.Key + " = " + kv.Value + " is " + clr.Name + "." + clrName + " in C#");
                }
            }
            foreach (string name in EnumTypes.Keys)
                if (!header.Enums.ContainsKey(name)) problems.Add("C# enum for " + name + " has no header enum");

            foreach (var cb in CallbackTypes)
            {
                CFunction callback;
                MethodInfo invoke = Named(cb.Value).GetMethod("Invoke");
                string delegateName = cb.Value.Substring(cb.Value.IndexOf('+') + 1);
                if (!header.Callbacks.TryGetValue(cb.Key, out callback))
                    problems.Add("the header has no " + cb.Key);
                else if (invoke.GetParameters().Length != callback.Parameters.Count || !Compatible(callback.Return, invoke.ReturnType) ||
                         invoke.GetParameters().Where((p, i) => !Compatible(callback.Parameters[i], p.ParameterType)).Any())
                    problems.Add(delegateName + " does not match " + cb.Key + " " + callback);
            }
            foreach (string name in header.Callbacks.Keys)
                if (!CallbackTypes.ContainsKey(name)) problems.Add("header callback type " + name + " has no delegate");

            if (headerAbi != Library.ExpectedAbiVersion)
                problems.Add("M3_ABI_VERSION is " + headerAbi + ", Library.ExpectedAbiVersion " + Library.ExpectedAbiVersion);
            return problems;
        }

        // --- cases -----------------------------------------------------------------------------

        public static IEnumerable<KeyValuePair<string, Action>> Cases()
        {
            yield return Case("header: DllImports and enums match include/mamba3rt.h", () =>
            {
                string text = File.ReadAllText(Paths.Header);
                CHeader header = Parse(text);
                Assert.True(header.Functions.Count >= 58, "parsed only " + header.Functions.Count + " functions");
                Assert.True(header.Enums.Count >= 8, "parsed only " + header.Enums.Count + " enums");
                List<string> problems = Differences(header, AbiVersion(text));
                Assert.True(problems.Count == 0, "NativeMethods differs from " + Paths.Header + ":\n  " + string.Join("\n  ", problems));
            });
            yield return Case("header: the check fails when the header changes", () =>
            {
                string text = File.ReadAllText(Paths.Header);
                Func<string, string, List<string>> changed = (from, to) =>
                {
                    Assert.True(text.Contains(from), "fixture: the header no longer contains " + from);
                    string t = text.Replace(from, to);
                    return Differences(Parse(t), AbiVersion(t));
                };
                Action<List<string>, string> mentions = (problems, what) =>
                    Assert.True(problems.Any(p => p.Contains(what)), "no problem mentions " + what + ": " + string.Join("; ", problems));
                mentions(changed("M3_API m3_status m3_generation_cancel(m3_generation* generation);",
                                 "M3_API m3_status m3_generation_cancel(m3_generation* generation);\nM3_API m3_status m3_new_function(int32_t x);"), "m3_new_function");
                mentions(changed("int32_t n_threads", "int64_t n_threads"), "m3_model_params_set_threads");
                mentions(changed("int32_t token, float bias", "int32_t token, float bias, int extra"), "m3_gen_params_add_logit_bias");
                mentions(changed("M3_API int64_t m3_live_handles(void)", "M3_API int32_t m3_live_handles(void)"), "m3_live_handles");
                mentions(changed("M3_FINISH_CANCELLED = 5", "M3_FINISH_CANCELLED = 5,\n  M3_FINISH_NEW = 6"), "m3_finish_reason");
                mentions(changed("M3_ERR_INTERNAL = 10", "M3_ERR_INTERNAL = 11"), "m3_status");
                mentions(changed("M3_STATE_K = 2,\n  M3_STATE_V = 3", "M3_STATE_V = 2,\n  M3_STATE_K = 3"), "m3_state_part");
                mentions(changed("const char* piece, size_t piece_len", "const char* piece, int piece_len"), "PieceCallback");
                mentions(changed("size_t piece_len,\n                                  m3_finish_reason finish", "size_t piece_len"), "StreamCallback");
                mentions(changed("M3_ENGINE_LAST_BATCH = 7", "M3_ENGINE_LAST_BATCH = 7,\n  M3_ENGINE_NEW = 8"), "m3_engine_stat_key");
                mentions(changed("M3_API m3_status m3_stream_cancel(m3_stream* stream);", ""), "m3_stream_cancel");
                mentions(changed("M3_API m3_status m3_generation_cancel(m3_generation* generation);", ""), "m3_generation_cancel");
                mentions(changed("#define M3_ABI_VERSION 1", "#define M3_ABI_VERSION 2"), "M3_ABI_VERSION");
            });
        }

        private static KeyValuePair<string, Action> Case(string name, Action a) => new KeyValuePair<string, Action>(name, a);
    }
}
