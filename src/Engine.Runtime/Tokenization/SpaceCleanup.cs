namespace Engine.Runtime.Tokenization;

/// <summary>
/// llama.cpp's <c>clean_spaces</c> step of <c>llama_detokenize</c> (Hugging Face's
/// <c>clean_up_tokenization_spaces</c>), on UTF-8 bytes: removes the space in " ?", " !", " .", " ,";
/// turns " ' " into "'"; removes the space before the contractions 's 'm 're 've (not 't 'd 'll,
/// which llama.cpp leaves commented out).
/// </summary>
internal static class SpaceCleanup
{
    public static void Apply(List<byte> text)
    {
        if (text.Count < 2) return;

        // Pass 1: " ?", " !", " .", " ,".
        int n = 1;
        for (int i = 1; i < text.Count; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x is (byte)'?' or (byte)'!' or (byte)'.' or (byte)',') n--;
            text[n++] = x;
        }
        Truncate(text, n);

        // Pass 2: " ' " → "'" (the checks read the text as pass 1 left it, including a blanked next byte).
        int count = text.Count;
        n = count > 0 ? 1 : 0;
        for (int i = 1; i < count; i++)
        {
            byte x = text[i];
            if (x == '\'' && i + 1 < count && text[i - 1] == ' ' && text[i + 1] == ' ')
            {
                n--;
                text[++i] = 0; // llama.cpp writes '\0' over the next space, then skips it
            }
            text[n++] = x;
        }
        Truncate(text, n);

        // Pass 3: " 's", " 'm", " 're", " 've".
        count = text.Count;
        n = count > 0 ? 1 : 0;
        for (int i = 1; i < count; i++)
        {
            byte x = text[i];
            if (text[i - 1] == ' ' && x == '\'' && i + 1 < count)
            {
                byte x1 = text[i + 1];
                if (x1 is (byte)'s' or (byte)'m') n--;
                else if (i + 2 < count && ((x1 == 'r' && text[i + 2] == 'e') || (x1 == 'v' && text[i + 2] == 'e'))) n--;
            }
            text[n++] = x;
        }
        Truncate(text, n);
    }

    private static void Truncate(List<byte> text, int length) => text.RemoveRange(length, text.Count - length);
}
