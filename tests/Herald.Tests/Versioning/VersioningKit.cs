using System.Buffers;
using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using System.Text;
using Herald.Log;
using Herald.Serialization;
using Herald.Subscriptions;
using Herald.Transport;

namespace Herald.Tests.Versioning;

// Three versions of one event, "ParcelMeasured". v1 weighed in grams and gave the size as one
// string; v2 renamed the weight to kilograms with a computed value; v3 split the size into three
// numbers. Neither change is one a schema's compatibility rules can express.
public sealed record ParcelMeasuredV1(string Parcel, int Seq, int Grams, string Size);

public sealed record ParcelMeasuredV2(string Parcel, int Seq, decimal Kilograms, string Size);

public sealed record ParcelMeasured(string Parcel, int Seq, decimal Kilograms, int LengthCm, int WidthCm, int HeightCm);

/// <summary>A type mapped without versions.</summary>
public sealed record LabelPrinted(string Parcel, int Seq);

/// <summary>Application code the v2 → v3 upcaster calls: the failure frame of a size it cannot read.</summary>
public static class Dimensions
{
    [MethodImpl(MethodImplOptions.NoInlining)]
    public static int[] Parse(string size)
    {
        var parts = size.Split('x');
        if (parts.Length != 3) throw new FormatException($"size '{size}' is not L x W x H");
        return [int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture)];
    }
}

/// <summary>One handler call as the v3 handler saw it.</summary>
public sealed record Seen(ParcelMeasured Event, int DataVersion, int Attempt);

/// <summary>The parcel wiring: the upcasters of ParcelMeasured, a v3 handler that records what it
/// gets, and raw appends of records as an old producer (or a plain client) wrote them.</summary>
public static class Parcels
{
    public const string Topic = "parcels";
    public const string Group = "sorting";
    public const int Partitions = 2;

    public static readonly SystemTextJsonEventSerializer Serializer = new();

    /// <summary>How many times each step ran, per parcel.</summary>
    public sealed class StepCalls
    {
        private readonly ConcurrentDictionary<(int From, string Parcel), int> _calls = new();

        public void Add(int from, string parcel) => _calls.AddOrUpdate((from, parcel), 1, (_, n) => n + 1);

        public int Of(int from, string parcel) => _calls.GetValueOrDefault((from, parcel));
    }

    /// <summary>ParcelMeasured at version 3 with upcasters from 1 and from 2.</summary>
    public static EventBuilder<ParcelMeasured> MapParcelMeasured(HeraldBuilder h, StepCalls? calls = null) =>
        h.Event<ParcelMeasured>(Topic, e => e.Parcel)
            .Version(3)
            .Upcast(1, (ParcelMeasuredV1 v1) =>
            {
                calls?.Add(1, v1.Parcel);
                return new ParcelMeasuredV2(v1.Parcel, v1.Seq, v1.Grams / 1000m, v1.Size);
            })
            .Upcast(2, (ParcelMeasuredV2 v2) =>
            {
                calls?.Add(2, v2.Parcel);
                var d = Dimensions.Parse(v2.Size);
                return new ParcelMeasured(v2.Parcel, v2.Seq, v2.Kilograms, d[0], d[1], d[2]);
            });

    /// <summary>The consumer: <see cref="MapParcelMeasured"/> and a handler recording every call.</summary>
    public static Action<HeraldBuilder> Consumer(ConcurrentQueue<Seen> seen, Action<SubscriptionOptions> options, StepCalls? calls = null) => h =>
    {
        h.Topic(Topic, Partitions);
        MapParcelMeasured(h, calls);
        h.Subscribe(Group, s =>
        {
            options(s.Options);
            s.Handle<ParcelMeasured>((e, ctx, ct) =>
            {
                seen.Enqueue(new Seen(e, ctx.Envelope.DataVersion, ctx.Attempt));
                return ValueTask.CompletedTask;
            });
        });
    };

    /// <summary>The event every version of record (parcel, seq) describes, as v3.</summary>
    public static ParcelMeasured Expected(string parcel, int seq) => new(parcel, seq, Grams(seq) / 1000m, 30, 20, 10 + seq);

    private static int Grams(int seq) => 100 + 250 * seq;

    /// <summary>The record's value as the producer of <paramref name="version"/> serialized it.</summary>
    public static byte[] Payload(int version, string parcel, int seq, string? size = null)
    {
        size ??= $"30x20x{10 + seq}";
        var buffer = new ArrayBufferWriter<byte>();
        switch (version)
        {
            case 1: Serializer.Serialize(new ParcelMeasuredV1(parcel, seq, Grams(seq), size), buffer); break;
            case 2: Serializer.Serialize(new ParcelMeasuredV2(parcel, seq, Grams(seq) / 1000m, size), buffer); break;
            default: Serializer.Serialize(Expected(parcel, seq), buffer); break;
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Appends a record of ParcelMeasured to the partition its key maps to, with
    /// <c>ce_dataversion</c> <paramref name="versionHeader"/> (none when null), as a producer of
    /// that version (or one from before versioning) wrote it.</summary>
    public static ValueTask<long> AppendAsync(ITransport transport, string parcel, int seq, string? versionHeader, byte[] payload, string type = nameof(ParcelMeasured))
    {
        var key = Encoding.UTF8.GetBytes(parcel);
        var headers = new List<LogHeader>
        {
            new(HeaderNames.Type, Encoding.UTF8.GetBytes(type)),
            new(HeaderNames.Id, Encoding.UTF8.GetBytes($"{parcel}-{seq}")),
            new(HeaderNames.SpecVersion, "1.0"u8.ToArray()),
            new(HeaderNames.ContentType, "application/json"u8.ToArray()),
        };
        if (versionHeader is not null) headers.Insert(1, new LogHeader(HeaderNames.DataVersion, Encoding.UTF8.GetBytes(versionHeader)));
        return transport.ProduceAsync(Topic, Herald.Transport.Partitioner.ForKey(key, Partitions), new OutgoingRecord(key, payload, headers));
    }
}
