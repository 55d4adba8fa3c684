namespace Mamba3Rt
{
    /// <summary>One streamed piece of output.</summary>
    public struct Piece
    {
        /// <summary>The token produced, or -1 for a final flushed piece.</summary>
        public int Token { get; }

        /// <summary>
        /// Its text: whole UTF-8 characters only, never (a prefix of) a pending stop string, so it
        /// can be empty while text is held back.
        /// </summary>
        public string Text { get; }

        /// <summary>A piece.</summary>
        public Piece(int token, string text)
        {
            Token = token;
            Text = text;
        }

        /// <inheritdoc/>
        public override string ToString() => Text;
    }
}
