using System;
using System.Runtime.CompilerServices;

namespace Mamba3Rt
{
    /// <summary>
    /// A failed call: the C status and the library's message (<c>m3_last_error()</c>), which
    /// names the file, tensor, argument or position at fault.
    /// </summary>
    public class Mamba3RtException : Exception
    {
        /// <summary>The C status code.</summary>
        public Status Status { get; }

        /// <summary>The library's message, without the status name.</summary>
        public string NativeMessage { get; }

        /// <summary>An exception for a status and message.</summary>
        public Mamba3RtException(Status status, string message)
            : base(NameOf(status) + ": " + message)
        {
            Status = status;
            NativeMessage = message;
        }

        private static string NameOf(Status status)
        {
            try
            {
                NativeLibraryLoader.EnsureLoaded();
                return NativeName(status);
            }
            catch (Exception e) when (e is DllNotFoundException || e is EntryPointNotFoundException || e is Mamba3RtException)
            {
                return status.ToString();
            }
        }

        [MethodImpl(MethodImplOptions.NoInlining)] // see NativeLibraryLoader
        private static string NativeName(Status status) => Utf8.FromNative(NativeMethods.m3_status_name(status));

        /// <summary>Throws for a failed status, reading the calling thread's last C error.</summary>
        internal static void Check(Status status)
        {
            if (status != Status.Ok)
                throw new Mamba3RtException(status, Utf8.FromNative(NativeMethods.m3_last_error()));
        }
    }
}
