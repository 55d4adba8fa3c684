using System;

namespace Mamba3Rt
{
    /// <summary>The C API's two-call pattern: pass a capacity, get the needed size back.</summary>
    internal static class Buffers
    {
        /// <summary>
        /// Calls <paramref name="call"/> with a buffer of <paramref name="guess"/> elements, and
        /// again with the needed size if that was too small; returns the elements written.
        /// </summary>
        internal static T[] TwoCall<T>(int guess, Func<T[], UIntPtr, Tuple<Status, UIntPtr>> call)
        {
            var buffer = new T[Math.Max(guess, 1)];
            Tuple<Status, UIntPtr> result = call(buffer, (UIntPtr)buffer.Length);
            if (result.Item1 == Status.BufferTooSmall && (ulong)result.Item2 > (ulong)buffer.Length)
            {
                buffer = new T[checked((int)(ulong)result.Item2)];
                result = call(buffer, (UIntPtr)buffer.Length);
            }
            Mamba3RtException.Check(result.Item1);
            int n = checked((int)(ulong)result.Item2);
            if (n != buffer.Length) Array.Resize(ref buffer, n);
            return buffer;
        }
    }
}
