using System.Text;
using CsCheck;
using Herald.Internal;
using Herald.Log;

namespace Herald.Tests.Publishing;

/// <summary>The publish buffer's header fields are copied into batches without being checked again
/// (IWellFormedEncodedHeaders): whatever it is given, they must be well-formed and decode to what
/// was added.</summary>
public class PublishBufferTests
{
    [Fact]
    public void Header_fields_written_by_the_publish_buffer_are_well_formed_and_decode_to_what_was_added()
    {
        var header = Gen.Select(
            Gen.String[Gen.Char.AlphaNumeric, 0, 80],                // key
            Gen.Byte.Array[0, 300],                                  // value bytes: varint lengths of one and two bytes
            Gen.String[Gen.Char, 0, 90],                             // or a text value, any UTF-16 (written as UTF-8)
            Gen.Bool);
        Gen.Select(Gen.Byte.Array[0, 200], header.Array[0, 12]).Sample((value, headers) =>
        {
            var pool = new PublishBuffer.Pool();
            using var buffer = pool.Rent();
            value.CopyTo(buffer.GetSpan(value.Length));
            buffer.Advance(value.Length);
            buffer.BeginHeaders();
            var expected = new List<(string Key, byte[] Value)>();
            foreach (var (key, bytes, text, asText) in headers)
            {
                if (asText)
                {
                    buffer.AddHeader(PublishBuffer.Field(key), text);
                    expected.Add((key, Encoding.UTF8.GetBytes(text)));
                }
                else
                {
                    buffer.AddHeader(PublishBuffer.Field(key), bytes);
                    expected.Add((key, bytes));
                }
            }
            Assert.Null(RecordHeaders.Check(buffer.EncodedFields, buffer.Count));
            var decoded = RecordHeaders.FromEncoded(buffer.EncodedFields.ToArray(), buffer.Count);
            Assert.Equal(expected.Count, decoded.Count);
            for (var i = 0; i < expected.Count; i++)
            {
                Assert.Equal(expected[i].Key, decoded[i].Key);
                Assert.Equal(expected[i].Value, decoded[i].Value.ToArray());
            }
            Assert.Equal(value, buffer.Slice(0, value.Length).ToArray()); // the value before the headers is untouched
        });
    }
}
