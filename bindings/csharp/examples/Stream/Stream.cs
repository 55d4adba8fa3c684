// Prints the greedy continuation of a prompt from the bundled model as it is generated:
// exactly what `mamba3rt generate --greedy --prompt PROMPT -n N` prints on stdout.
//
//   mono Stream.exe "The president said that" 20        (Mono)
//   dotnet run -- "The president said that" 20          (.NET, from this directory)
//
// The model is $MAMBA3RT_MODEL, else the first models/default found above the current
// directory or the executable. Ctrl-C stops the stream.
using System;
using System.IO;
using System.Text;
using System.Threading;
using Mamba3Rt;

internal static class StreamExample
{
    private static string ModelDir()
    {
        string dir = Environment.GetEnvironmentVariable("MAMBA3RT_MODEL");
        if (!string.IsNullOrEmpty(dir)) return dir;
        foreach (string start in new[] { Directory.GetCurrentDirectory(), AppDomain.CurrentDomain.BaseDirectory })
        {
            for (string d = start; d != null; d = Path.GetDirectoryName(d))
            {
                string candidate = Path.Combine(d, "models", "default");
                if (File.Exists(Path.Combine(candidate, "config.json"))) return candidate;
            }
        }
        throw new DirectoryNotFoundException("no models/default above the current directory or the executable; set MAMBA3RT_MODEL");
    }

    private static int Main(string[] args)
    {
        int n;
        if (args.Length != 2 || !int.TryParse(args[1], out n) || n < 0)
        {
            Console.Error.WriteLine("usage: Stream PROMPT N   (N: tokens to generate, a non-negative integer)");
            return 2;
        }
        using (var cts = new CancellationTokenSource())
        {
            Console.CancelKeyPress += (sender, e) =>
            {
                e.Cancel = true;
                cts.Cancel();
            };
            try
            {
                // Raw UTF-8 bytes: the console's encoding must not change what is printed.
                Stream stdout = Console.OpenStandardOutput();
                using (var model = Model.Load(ModelDir()))
                using (var session = model.CreateSession())
                using (var parameters = new GenParams().Greedy().MaxTokens(n))
                using (var generation = session.StartGeneration(parameters))
                {
                    generation.PushText(args[0]);
                    foreach (string piece in generation.Stream(cts.Token))
                    {
                        byte[] bytes = Encoding.UTF8.GetBytes(piece);
                        stdout.Write(bytes, 0, bytes.Length);
                        stdout.Flush();
                    }
                }
                return 0;
            }
            catch (OperationCanceledException)
            {
                return 130;
            }
            catch (Exception e) when (e is Mamba3RtException || e is IOException || e is DllNotFoundException)
            {
                Console.Error.WriteLine("Stream: " + e.Message);
                return 1;
            }
        }
    }
}
