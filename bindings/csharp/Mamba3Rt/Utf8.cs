using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Mamba3Rt
{
    /// <summary>UTF-8 between .NET strings and C (netstandard2.0 has no PtrToStringUTF8).</summary>
    internal static class Utf8
    {
        // No BOM; invalid input becomes U+FFFD instead of throwing.
        private static readonly UTF8Encoding Encoding = new UTF8Encoding(false, false);

        /// <summary>A NUL-terminated C string; null for NULL.</summary>
        internal static string FromNative(IntPtr text)
        {
            if (text == IntPtr.Zero) return null;
            int length = 0;
            while (Marshal.ReadByte(text, length) != 0) length++;
            var bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.GetString(bytes);
        }

        /// <summary>Counted bytes from C.</summary>
        internal static string FromNative(IntPtr text, int length)
        {
            if (length == 0) return string.Empty;
            var bytes = new byte[length];
            Marshal.Copy(text, bytes, 0, length);
            return Encoding.GetString(bytes);
        }

        /// <summary>The UTF-8 bytes of text (no terminator).</summary>
        internal static byte[] Bytes(string text) => Encoding.GetBytes(text);

        /// <summary>The UTF-8 bytes of text plus a NUL terminator; an embedded NUL is an error.</summary>
        internal static byte[] NulTerminated(string text, string what)
        {
            if (text == null) throw new ArgumentNullException(what);
            if (text.IndexOf('\0') >= 0)
                throw new Mamba3RtException(Status.InvalidArgument, what + " contains a NUL character");
            var bytes = new byte[Encoding.GetByteCount(text) + 1];
            Encoding.GetBytes(text, 0, text.Length, bytes, 0);
            return bytes;
        }
    }
}
