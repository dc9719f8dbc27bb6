using System.Text;
using CsCheck;
using Herald.Log.Batches;

namespace Herald.Log.Tests.Batches;

/// <summary>Headers handed to the log already in their stored form (RecordHeaders.FromEncoded) are
/// copied as they are: the batch must be byte for byte the one the same headers as a list give.</summary>
public class EncodedHeadersTests
{
    private static byte[] Encode(IReadOnlyList<(string Key, byte[] Value)> headers)
    {
        var buffer = new byte[headers.Sum(h => 10 + Encoding.UTF8.GetByteCount(h.Key) + h.Value.Length)];
        var p = 0;
        foreach (var (key, value) in headers)
        {
            p += RecordHeaders.WriteField(buffer.AsSpan(p), Encoding.UTF8.GetBytes(key));
            p += RecordHeaders.WriteField(buffer.AsSpan(p), value);
        }
        return buffer[..p];
    }

    [Fact]
    public void Encoded_headers_make_the_same_batch_as_a_header_list()
    {
        var keyGen = Gen.OneOf(Gen.Const("ce_type"), Gen.Const("ce_id"), Gen.Const("x-custom"), Gen.Char['a', 'z'].Array[0, 20].Select(c => new string(c)));
        Gen.Select(keyGen, Gen.Byte.Array[0, 300]).List[0, 12].Sample(headers =>
        {
            var list = headers.Select(h => new LogHeader(h.Item1, h.Item2)).ToList();
            var encoded = RecordHeaders.FromEncoded(Encode(headers), headers.Count);
            var key = "k"u8.ToArray();
            var value = "v"u8.ToArray();
            var fromList = RecordBatchBuilder.Encode(7, [new NewRecord(key, value, list, 1000)], 1000);
            var fromEncoded = RecordBatchBuilder.Encode(7, [new NewRecord(key, value, encoded, 1000)], 1000);
            Assert.Equal(fromList, fromEncoded);
            Assert.Equal(list.Count, encoded.Count);
            for (var i = 0; i < list.Count; i++)
            {
                Assert.Equal(list[i].Key, encoded[i].Key);
                Assert.Equal(list[i].Value.ToArray(), encoded[i].Value.ToArray());
            }
        }, iter: 300);
    }

    [Fact]
    public void Malformed_fields_are_refused_with_the_byte_offset()
    {
        var good = Encode([("ce_type", "Order"u8.ToArray())]);
        Assert.Single(RecordHeaders.FromEncoded(good, 1));

        var trailing = Assert.Throws<ArgumentException>(() => RecordHeaders.FromEncoded(good, 0));
        Assert.Contains("from byte 0", trailing.Message);

        var cut = Assert.Throws<ArgumentException>(() => RecordHeaders.FromEncoded(good.AsMemory(0, good.Length - 2), 1));
        Assert.Contains("value field at byte 8", cut.Message);

        var missing = Assert.Throws<ArgumentException>(() => RecordHeaders.FromEncoded(good, 2));
        Assert.Contains("header 1", missing.Message);

        var negative = new byte[] { 0x01 }; // zig-zag -1: a null key is not a header
        Assert.Throws<ArgumentException>(() => RecordHeaders.FromEncoded(negative, 1));
    }
}
