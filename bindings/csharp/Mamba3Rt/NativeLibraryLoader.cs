using System;
using System.Collections.Generic;
using System.IO;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Mamba3Rt
{
    /// <summary>
    /// Finds libmamba3rt before the first P/Invoke (netstandard2.0 has no NativeLibrary API).
    /// </summary>
    /// <remarks>
    /// Search order, the first that loads wins:
    /// <list type="number">
    /// <item><c>$MAMBA3RT_LIB</c>: the path of the library file;</item>
    /// <item><c>$MAMBA3RT_LIB_DIR</c>: a directory holding libmamba3rt.so.1 or libmamba3rt.so;</item>
    /// <item>the directory of this assembly, then the application's base directory;</item>
    /// <item>the install prefixes /usr/local/lib, /usr/lib and /usr/lib/&lt;multiarch&gt;;</item>
    /// <item>the system loader's own search (LD_LIBRARY_PATH, ld.so.cache) when the runtime
    /// resolves the DllImport.</item>
    /// </list>
    /// A library found by path is loaded with dlopen; the DllImport name is its soname
    /// (libmamba3rt.so.1), which the dynamic loader matches to the already-loaded library.
    /// An environment variable that names a library which does not load is an error (a
    /// <see cref="DllNotFoundException"/> with the loader's message), never silently skipped.
    /// Every entry point of the binding (Model.Load, Tokenizer.Load, new GenParams(), Library)
    /// calls <see cref="EnsureLoaded"/> first and makes its own native calls in a separate,
    /// non-inlined method: Mono binds a DllImport when it compiles the method that calls it.
    /// </remarks>
    public static class NativeLibraryLoader
    {
        private static readonly object Gate = new object();
        private static bool _done;
        private static string _loadedFrom;

        /// <summary>The path the library was loaded from, or null if the system search was used.</summary>
        public static string LoadedFrom
        {
            get { EnsureLoaded(); return _loadedFrom; }
        }

        private const int RtldNow = 2;
        private const int RtldGlobal = 0x100;

        [DllImport("libdl.so.2", EntryPoint = "dlopen")] private static extern IntPtr DlOpen(string path, int flags);
        [DllImport("libdl.so.2", EntryPoint = "dlerror")] private static extern IntPtr DlError();

        /// <summary>Loads the library once; later calls return at once.</summary>
        public static void EnsureLoaded()
        {
            lock (Gate)
            {
                if (_done) return;
                if (Environment.OSVersion.Platform == PlatformID.Unix)
                    _loadedFrom = LoadFirst();
                CheckAbi();
                _done = true;
            }
        }

        // Mono resolves a P/Invoke when it compiles the calling method, so no method that runs
        // before the preload may call into libmamba3rt: the calls live in separate methods.
        [MethodImpl(MethodImplOptions.NoInlining)]
        private static void CheckAbi()
        {
            uint abi = NativeMethods.m3_abi_version();
            if (abi != Library.ExpectedAbiVersion)
                throw new Mamba3RtException(Status.Unsupported,
                    "libmamba3rt has ABI version " + abi + ", these bindings need " + Library.ExpectedAbiVersion);
        }

        private static string LoadFirst()
        {
            string file = Environment.GetEnvironmentVariable("MAMBA3RT_LIB");
            if (!string.IsNullOrEmpty(file)) return LoadOrThrow(file, "MAMBA3RT_LIB");

            string dir = Environment.GetEnvironmentVariable("MAMBA3RT_LIB_DIR");
            if (!string.IsNullOrEmpty(dir))
            {
                foreach (string name in FileNames)
                {
                    string path = Path.Combine(dir, name);
                    if (File.Exists(path)) return LoadOrThrow(path, "MAMBA3RT_LIB_DIR");
                }
                throw new DllNotFoundException("MAMBA3RT_LIB_DIR=" + dir + " holds no libmamba3rt.so.1 or libmamba3rt.so");
            }

            foreach (string candidate in Candidates())
            {
                if (File.Exists(candidate) && DlOpen(candidate, RtldNow | RtldGlobal) != IntPtr.Zero)
                    return candidate;
            }
            return null; // left to the runtime's DllImport search
        }

        private static readonly string[] FileNames = { NativeMethods.Library, "libmamba3rt.so" };

        private static IEnumerable<string> Candidates()
        {
            var dirs = new List<string>();
            string assemblyDir = Path.GetDirectoryName(typeof(NativeLibraryLoader).Assembly.Location);
            if (!string.IsNullOrEmpty(assemblyDir)) dirs.Add(assemblyDir);
            dirs.Add(AppDomain.CurrentDomain.BaseDirectory);
            dirs.Add("/usr/local/lib");
            dirs.Add("/usr/lib");
            dirs.Add("/usr/lib/x86_64-linux-gnu");
            dirs.Add("/usr/lib/aarch64-linux-gnu");
            foreach (string d in dirs)
                foreach (string name in FileNames)
                    yield return Path.Combine(d, name);
        }

        private static string LoadOrThrow(string path, string variable)
        {
            if (DlOpen(path, RtldNow | RtldGlobal) != IntPtr.Zero) return path;
            throw new DllNotFoundException(variable + ": cannot load " + path + ": " + Utf8.FromNative(DlError()));
        }
    }
}
