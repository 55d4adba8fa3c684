using System;
using System.Collections.Generic;
using System.IO;

namespace Mamba3Rt.Tests
{
    /// <summary>Failed expectation.</summary>
    public sealed class AssertionException : Exception
    {
        public AssertionException(string message) : base(message) { }
    }

    /// <summary>The few assertions the suite needs.</summary>
    public static class Assert
    {
        public static void True(bool condition, string what)
        {
            if (!condition) throw new AssertionException(what);
        }

        public static void Equal<T>(T expected, T actual, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(expected, actual))
                throw new AssertionException(what + ": expected <" + expected + ">, got <" + actual + ">");
        }

        public static T Throws<T>(Action action, string what) where T : Exception
        {
            try
            {
                action();
            }
            catch (T e)
            {
                return e;
            }
            catch (Exception e)
            {
                throw new AssertionException(what + ": expected " + typeof(T).Name + ", got " + e.GetType().Name + ": " + e.Message);
            }
            throw new AssertionException(what + ": expected " + typeof(T).Name + ", nothing was thrown");
        }

        /// <summary>A Mamba3RtException with this status whose native message contains fragment.</summary>
        public static Mamba3RtException Fails(Status status, string fragment, Action action, string what)
        {
            var e = Throws<Mamba3RtException>(action, what);
            Equal(status, e.Status, what + " (status; message: " + e.Message + ")");
            True(e.NativeMessage.Contains(fragment), what + ": message '" + e.NativeMessage + "' lacks '" + fragment + "'");
            True(e.Message.StartsWith("M3_ERR_", StringComparison.Ordinal), what + ": Message lacks the status name: " + e.Message);
            return e;
        }
    }

    /// <summary>Paths the tests use: environment variables first, else the repository layout.</summary>
    public static class Paths
    {
        private static string FindUp(string relative)
        {
            foreach (string start in new[] { Directory.GetCurrentDirectory(), AppDomain.CurrentDomain.BaseDirectory })
            {
                for (string dir = start; dir != null; dir = Path.GetDirectoryName(dir))
                {
                    string candidate = Path.Combine(dir, relative);
                    if (File.Exists(candidate) || Directory.Exists(candidate)) return candidate;
                }
            }
            throw new InvalidOperationException(relative + " not found above the current directory");
        }

        public static string ModelDir =>
            Environment.GetEnvironmentVariable("MAMBA3RT_MODEL") ?? FindUp(Path.Combine("models", "default"));

        public static string Header =>
            Environment.GetEnvironmentVariable("MAMBA3RT_HEADER") ?? FindUp(Path.Combine("include", "mamba3rt.h"));
    }

    /// <summary>
    /// Runs the cases one after another, then checks on the C side that every handle was
    /// released (after a full collection, so finalizers ran too). Prints
    /// "N passed, M failed" and exits 1 on any failure.
    /// </summary>
    public static class TestRunner
    {
        public static int Main()
        {
            var cases = new List<KeyValuePair<string, Action>>();
            cases.AddRange(HeaderCheck.Cases());
            cases.AddRange(ApiTests.Cases());
            int passed = 0, failed = 0;
            foreach (var c in cases)
            {
                try
                {
                    c.Value();
                    passed++;
                    Console.WriteLine("ok    " + c.Key);
                }
                catch (Exception e)
                {
                    failed++;
                    Console.WriteLine("FAIL  " + c.Key + ": " + e);
                }
            }

            long live = Library.LiveHandles;
            for (int i = 0; i < 50 && live != 0; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
                live = Library.LiveHandles;
            }
            if (live == 0)
            {
                passed++;
                Console.WriteLine("ok    leak check: m3_live_handles() == 0");
            }
            else
            {
                failed++;
                Console.WriteLine("FAIL  leak check: m3_live_handles() == " + live + " after all cases and finalizers");
            }
            Console.WriteLine(passed + " passed, " + failed + " failed");
            return failed == 0 ? 0 : 1;
        }
    }
}
