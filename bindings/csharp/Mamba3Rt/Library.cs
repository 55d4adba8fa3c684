using System.Runtime.CompilerServices;

namespace Mamba3Rt
{
    /// <summary>Library-wide information.</summary>
    public static class Library
    {
        /// <summary>The <c>M3_ABI_VERSION</c> these bindings were written for.</summary>
        public const uint ExpectedAbiVersion = 1;

        /// <summary>The library version string, e.g. "0.1.0".</summary>
        public static string Version
        {
            get { NativeLibraryLoader.EnsureLoaded(); return Native.Version(); }
        }

        /// <summary>The ABI version the loaded library was built with.</summary>
        public static uint AbiVersion
        {
            get { NativeLibraryLoader.EnsureLoaded(); return Native.AbiVersion(); }
        }

        /// <summary>
        /// Handles (models, sessions, tokenizers, parameters, generations) still allocated,
        /// process-wide, as counted by the C library. Tests use it as a leak check.
        /// </summary>
        public static long LiveHandles
        {
            get { NativeLibraryLoader.EnsureLoaded(); return Native.LiveHandles(); }
        }

        /// <summary>The library's name of a backend: "auto", "cpu", "vulkan", "cuda", "cpu-reference".</summary>
        public static string BackendName(Backend backend)
        {
            NativeLibraryLoader.EnsureLoaded();
            return Native.BackendName(backend);
        }

        /// <summary>Throws a <see cref="Mamba3RtException"/> saying why, if the backend cannot run here.</summary>
        public static void EnsureBackendAvailable(Backend backend)
        {
            NativeLibraryLoader.EnsureLoaded();
            Native.BackendAvailable(backend);
        }

        // The native calls, in methods compiled only after the library is loaded (see NativeLibraryLoader).
        private static class Native
        {
            [MethodImpl(MethodImplOptions.NoInlining)] internal static string Version() => Utf8.FromNative(NativeMethods.m3_version());
            [MethodImpl(MethodImplOptions.NoInlining)] internal static uint AbiVersion() => NativeMethods.m3_abi_version();
            [MethodImpl(MethodImplOptions.NoInlining)] internal static long LiveHandles() => NativeMethods.m3_live_handles();
            [MethodImpl(MethodImplOptions.NoInlining)] internal static string BackendName(Backend b) => Utf8.FromNative(NativeMethods.m3_backend_name(b));
            [MethodImpl(MethodImplOptions.NoInlining)] internal static void BackendAvailable(Backend b) => Mamba3RtException.Check(NativeMethods.m3_backend_available(b));
        }
    }
}
