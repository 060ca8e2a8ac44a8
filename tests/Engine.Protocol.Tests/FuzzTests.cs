using System.Buffers;
using Engine.Protocol;
using Engine.Protocol.Messages;

namespace Engine.Protocol.Tests;

/// <summary>
/// Randomized frames (valid headers with random bodies, random headers, bit flips of valid frames):
/// parsing and decoding either succeed or fail with a status / <see cref="ProtocolException"/>;
/// nothing else escapes and nothing reads past a frame.
/// </summary>
public class FuzzTests
{
    [Fact]
    public void One_hundred_thousand_random_frames_never_escape_the_parser_or_decoder()
    {
        var random = new Random(20261126);
        var writer = new FrameWriter();
        byte[][] templates = new (Opcode, object)[]
        {
            (Opcode.Recommend, new RecommendRequest { CustomerId = "c", Category = "shoes", K = 3 }),
            (Opcode.Hello, new HelloRequest { ApiKey = "key", ClientName = "fuzz" }),
            (Opcode.Generate, new GenerateRequest { Prompt = "Describe: red shoes", MaxTokens = 20, Seed = 7 }),
            (Opcode.Events, new EventBatch { Events = [new ShopperEvent { CustomerId = "c", Kind = 2, ProductId = "p", RecommendationId = "r" }, new ShopperEvent { CustomerId = "d" }] }),
            (Opcode.CatalogUpsert, new CatalogUpsertRequest { Products = [new CatalogProduct { ProductId = "p", Title = "Shoe", Stock = 3 }] }),
            (Opcode.Experiment, new ExperimentCommand { ExperimentId = "e", Action = 1, Arms = ["a", "b"], Weights = [0.5f, 0.5f] }),
        }.Select(t =>
        {
            var valid = new ArrayBufferWriter<byte>();
            writer.WriteObject(valid, t.Item1, FrameFlags.End, 1, t.Item2);
            return valid.WrittenSpan.ToArray();
        }).ToArray();
        Opcode[] clientOps = [Opcode.Hello, Opcode.Health, Opcode.Recommend, Opcode.Generate, Opcode.Events, Opcode.CatalogUpsert, Opcode.Experiment, Opcode.Stats];
        const int maxBody = 4096;
        var scratch = new byte[16 + 600];
        int complete = 0, decoded = 0, rejected = 0;

        for (int i = 0; i < 100_000; i++)
        {
            int length;
            switch (i % 3)
            {
                case 0: // valid header, random body of random length
                    int bodyLength = random.Next(0, 600);
                    new FrameHeader(clientOps[random.Next(clientOps.Length)], FrameFlags.End, (uint)random.Next(), (uint)bodyLength).Write(scratch);
                    random.NextBytes(scratch.AsSpan(16, bodyLength));
                    length = 16 + bodyLength;
                    break;
                case 1: // a valid frame with a few bytes flipped (header included)
                    byte[] template = templates[random.Next(templates.Length)];
                    template.CopyTo(scratch, 0);
                    for (int f = random.Next(1, 4); f > 0; f--) scratch[random.Next(template.Length)] ^= (byte)random.Next(1, 256);
                    length = template.Length;
                    break;
                default: // anything at all
                    length = random.Next(0, 64);
                    random.NextBytes(scratch.AsSpan(0, length));
                    if (random.Next(2) == 0 && length >= 4) "ENGN"u8.CopyTo(scratch);
                    break;
            }

            var buffer = new ReadOnlySequence<byte>(scratch, 0, length);
            FrameReadStatus status = FrameReader.TryParse(buffer, maxBody, out Frame frame, out var consumed, out _);
            if (status != FrameReadStatus.Complete) { rejected++; continue; }
            complete++;
            Assert.True(buffer.Slice(0, consumed).Length == 16 + frame.Header.Length);
            if (OpcodeBodies.BodyType(frame.Opcode) is null) continue;
            try
            {
                _ = MessageSerializer.Deserialize(frame.Opcode, frame.Body);
                decoded++;
            }
            catch (ProtocolException e)
            {
                Assert.Equal(ErrorCode.BadBody, e.Code);
            }
        }
        Assert.True(complete > 30_000, $"only {complete} frames parsed");
        Assert.True(rejected > 10_000, $"only {rejected} rejected");
        Assert.True(decoded > 0, "no body decoded");
    }

    [Fact]
    public void A_string_header_of_int_min_value_is_a_bad_body_not_a_crash()
    {
        // Found by the fuzz test: MemoryPack alone reads outside the buffer on this body.
        byte[] body = Convert.FromHexString("09" + "00000000" + "FEFFFFFF0100000063" + "00000080" + "000000000000");
        var e = Assert.Throws<ProtocolException>(() => MessageSerializer.Deserialize<RecommendRequest>(new ReadOnlySequence<byte>(body)));
        Assert.Equal(ErrorCode.BadBody, e.Code);
        // And a negative member length in the version-tolerant header.
        byte[] negative = Convert.FromHexString("02" + "02" + "A3" + "0500" + "00000000");
        Assert.Equal(ErrorCode.BadBody, Assert.Throws<ProtocolException>(() => MessageSerializer.Deserialize<ErrorBody>(new ReadOnlySequence<byte>(negative))).Code);
    }
}
