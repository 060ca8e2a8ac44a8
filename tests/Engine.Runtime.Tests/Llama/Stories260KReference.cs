namespace Engine.Runtime.Tests.Llama;

/// <summary>
/// llama.cpp's greedy outputs on the stories260K fixtures, copied from ../shared/models/REFERENCE.md
/// (prompt "Once upon a time" with BOS; llama.cpp CPU, greedy).
/// </summary>
internal static class Stories260KReference
{
    public const string F32File = "stories260K.f32.gguf";
    public const string Q8File = "stories260K.q8_0.gguf";

    /// <summary>Prompt ids of "Once upon a time" with BOS, both files.</summary>
    public static readonly int[] PromptIds = [1, 403, 407, 261, 378];

    /// <summary>The first 200 generated ids of the F32 model.</summary>
    public static readonly int[] F32Ids = Parse("""
        432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310 439 419 357 336 432 313 438 310 432 278 316 439 419 298 414 267 265 282 295 433 426 436 317 286 296 418 269 279 292 416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 391 267 337 335 364 420 268 388 432 398 359 280 303 439 413 272 417 264 312 426 436 13 438 310 286 296 418 269 279 292 416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 439 423 262 304 420 422 432 317 426 359 279 292 416 439 413 409 416 327 263 415 294 267 400 426 436 13 438 310 279 292 416 439 413 391 267 281 421 427 311 357 432 384 358 336 432 313 442
        """);

    /// <summary>The first 200 generated ids of the Q8_0 model (llama.cpp quantizes activations to Q8_0 too).</summary>
    public static readonly int[] Q8Ids = Parse("""
        432 383 286 261 376 298 315 421 395 317 426 338 401 396 267 337 410 408 419 292 411 322 265 282 295 433 426 385 328 432 358 394 261 370 432 352 266 268 388 426 338 391 266 267 337 335 312 432 398 312 286 267 414 270 333 415 426 13 438 310 439 419 357 336 432 313 438 310 432 278 316 439 419 298 414 267 265 282 295 433 426 436 317 286 296 418 269 279 292 416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 391 267 337 335 284 422 268 388 426 436 320 285 357 336 432 313 442 391 267 337 335 364 432 317 426 410 448 411 280 303 439 413 272 417 264 312 426 436 13 438 310 286 296 418 269 279 292 416 439 413 409 416 327 263 415 294 267 400 426 338 336 432 313 442 439 423 262 304 420 422 432 317 426 359 279 292 416 439 413 409 416 327 263 415 294 267 400 426 436 320 285 357 336 432
        """);

    /// <summary>The prompt as llama.cpp prints it before the completion in REFERENCE.md.</summary>
    public const string PrintedPrompt = "<s> Once upon a time";

    /// <summary>
    /// llama.cpp's printed text of the F32 run (REFERENCE.md, "Text of the F32 run"), without the
    /// printed prompt and trailing newlines: the completion of all 251 generated ids (the first 200 are listed).
    /// </summary>
    public static string F32Completion()
    {
        string md = File.ReadAllText(Engine.Tests.Shared.SharedFixtures.PathOf("models", "REFERENCE.md")).ReplaceLineEndings("\n");
        int heading = md.IndexOf("Text of the F32 run", StringComparison.Ordinal);
        int open = md.IndexOf("```\n", heading, StringComparison.Ordinal) + 4;
        int close = md.IndexOf("\n```", open, StringComparison.Ordinal);
        string text = md[open..close].TrimEnd('\n');
        if (!text.StartsWith(PrintedPrompt, StringComparison.Ordinal)) throw new InvalidDataException("REFERENCE.md's F32 text does not start with the prompt");
        return text[PrintedPrompt.Length..];
    }

    private static int[] Parse(string ids) =>
        ids.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray();
}
