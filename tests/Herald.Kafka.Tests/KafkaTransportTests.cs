using System.Collections.Concurrent;
using System.Text;
using Confluent.Kafka;
using Herald.DeadLetters;
using Herald.Transport;
using Microsoft.Extensions.DependencyInjection;

namespace Herald.Kafka.Tests;

public sealed record NoteTaken(string Key, int Seq);

/// <summary>Herald on Kafka through Confluent.Kafka against librdkafka's mock cluster: the same
/// application code as on the embedded log, only the transport line differs.</summary>
public sealed class KafkaTransportTests(MockCluster cluster) : IClassFixture<MockCluster>
{
    private static Action<HeraldBuilder> Notes(string topic, string group, ConcurrentQueue<(string Key, int Seq, int Partition, string Id)> seen) => h =>
    {
        h.Topic(topic, partitions: 3);
        h.Event<NoteTaken>(topic, e => e.Key);
        h.Subscribe(group, s => s.Handle<NoteTaken>((e, ctx, ct) =>
        {
            seen.Enqueue((e.Key, e.Seq, ctx.Envelope.Partition, ctx.Envelope.Id));
            return ValueTask.CompletedTask;
        }));
    };

    [Fact]
    public async Task Published_events_are_handled_once_each_in_order_per_key_on_the_partition_murmur2_gives_their_key()
    {
        var topic = MockCluster.Unique("notes");
        var seen = new ConcurrentQueue<(string Key, int Seq, int Partition, string Id)>();
        var host = await KafkaHosts.StartAsync(cluster.BootstrapServers, Notes(topic, "audit", seen));
        int partitions;
        try
        {
            // The mock cluster creates topics with its own default partitions (4): Herald
            // partitions by the count the topic has.
            partitions = host.Services.GetRequiredService<ITransport>().GetPartitionCount(topic);
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            for (var n = 0; n < 60; n++) await publisher.PublishAsync(new NoteTaken($"k{n % 7}", n));
            await KafkaHosts.WaitUntilAsync(() => seen.Count >= 60, "60 events handled");
            await Task.Delay(300); // nothing more may come
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
        Assert.Equal(60, seen.Count);
        Assert.Equal(60, seen.Select(s => s.Id).Distinct().Count());
        for (var k = 0; k < 7; k++)
        {
            var key = $"k{k}";
            Assert.Equal(Enumerable.Range(0, 60).Where(n => n % 7 == k), seen.Where(s => s.Key == key).Select(s => s.Seq));
            Assert.All(seen.Where(s => s.Key == key), s => Assert.Equal(Herald.Transport.Partitioner.ForKey(Encoding.UTF8.GetBytes(key), partitions), s.Partition));
        }
    }

    [Fact]
    public async Task A_group_restarted_resumes_from_its_committed_offsets_and_handles_only_what_came_after()
    {
        var topic = MockCluster.Unique("resume");
        var seen = new ConcurrentQueue<(string Key, int Seq, int Partition, string Id)>();
        var first = await KafkaHosts.StartAsync(cluster.BootstrapServers, Notes(topic, "resumer", seen));
        try
        {
            var publisher = first.Services.GetRequiredService<IEventPublisher>();
            for (var n = 0; n < 20; n++) await publisher.PublishAsync(new NoteTaken($"k{n % 3}", n));
            await KafkaHosts.WaitUntilAsync(() => seen.Count >= 20, "the first 20 handled");
        }
        finally
        {
            await first.StopAndDisposeAsync(); // commits what finished as it leaves
        }
        var again = new ConcurrentQueue<(string Key, int Seq, int Partition, string Id)>();
        var second = await KafkaHosts.StartAsync(cluster.BootstrapServers, Notes(topic, "resumer", again));
        try
        {
            var publisher = second.Services.GetRequiredService<IEventPublisher>();
            for (var n = 20; n < 30; n++) await publisher.PublishAsync(new NoteTaken($"k{n % 3}", n));
            await KafkaHosts.WaitUntilAsync(() => again.Count >= 10, "the next 10 handled");
            await Task.Delay(300);
        }
        finally
        {
            await second.StopAndDisposeAsync();
        }
        Assert.Equal(Enumerable.Range(20, 10), again.Select(s => s.Seq).Order());
    }

    [Fact]
    public async Task A_record_from_a_plain_Kafka_client_with_CloudEvents_headers_is_handled_and_Heralds_records_carry_them()
    {
        var topic = MockCluster.Unique("plain");
        var seen = new ConcurrentQueue<(string Key, int Seq, int Partition, string Id)>();
        var host = await KafkaHosts.StartAsync(cluster.BootstrapServers, Notes(topic, "plain-audit", seen));
        try
        {
            // A plain client, CloudEvents Kafka binding (binary mode): attributes as ce_ headers.
            using (var producer = new ProducerBuilder<string, string>(new ProducerConfig { BootstrapServers = cluster.BootstrapServers }).Build())
            {
                var headers = new Headers
                {
                    { "ce_specversion", "1.0"u8.ToArray() },
                    { "ce_id", "plain-1"u8.ToArray() },
                    { "ce_source", "/plain"u8.ToArray() },
                    { "ce_type", "NoteTaken"u8.ToArray() },
                    { "content-type", "application/json"u8.ToArray() },
                };
                await producer.ProduceAsync(topic, new Message<string, string> { Key = "kp", Value = """{"key":"kp","seq":7}""", Headers = headers });
            }
            await KafkaHosts.WaitUntilAsync(() => !seen.IsEmpty, "the plain client's record handled");
            Assert.Equal(("kp", 7, "plain-1"), (seen.Single().Key, seen.Single().Seq, seen.Single().Id));

            // Herald's record, read by a plain client.
            await host.Services.GetRequiredService<IEventPublisher>().PublishAsync(new NoteTaken("kh", 8));
            using var consumer = new ConsumerBuilder<string, string>(new ConsumerConfig
            {
                BootstrapServers = cluster.BootstrapServers,
                GroupId = MockCluster.Unique("reader"),
                AutoOffsetReset = AutoOffsetReset.Earliest,
            }).Build();
            consumer.Subscribe(topic);
            ConsumeResult<string, string>? found = null;
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (found is null && DateTime.UtcNow < deadline)
                if (consumer.Consume(TimeSpan.FromMilliseconds(200)) is { } r && r.Message.Key == "kh") found = r;
            consumer.Close();
            Assert.NotNull(found);
            string Header(string name) => Encoding.UTF8.GetString(found!.Message.Headers.GetLastBytes(name));
            Assert.Equal("1.0", Header("ce_specversion"));
            Assert.Equal("NoteTaken", Header("ce_type"));
            Assert.False(string.IsNullOrEmpty(Header("ce_id")));
            Assert.Contains("\"seq\":8", found!.Message.Value, StringComparison.Ordinal);
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task A_handler_that_always_fails_is_retried_through_the_retry_topic_and_dead_lettered_on_Kafka()
    {
        var topic = MockCluster.Unique("failing");
        var attempts = new ConcurrentDictionary<int, int>();
        var handled = new ConcurrentQueue<int>();
        var host = await KafkaHosts.StartAsync(cluster.BootstrapServers, h =>
        {
            h.Topic(topic, partitions: 2);
            h.Event<NoteTaken>(topic, e => e.Key);
            h.Subscribe("fragile", s => s
                .Handle<NoteTaken>((e, ctx, ct) =>
                {
                    attempts.AddOrUpdate(e.Seq, 1, (_, a) => a + 1);
                    if (e.Key == "poison") throw new FormatException($"note {e.Seq} is malformed");
                    handled.Enqueue(e.Seq);
                    return ValueTask.CompletedTask;
                })
                .Configure(o =>
                {
                    o.Retry.ImmediateRetries = 1;
                    o.Retry.Backoff = TimeSpan.FromMilliseconds(5);
                    o.Retry.Delayed = [TimeSpan.FromMilliseconds(100)];
                    o.DeadLetterMode = Herald.Subscriptions.DeadLetterMode.Skip;
                }));
        });
        try
        {
            var publisher = host.Services.GetRequiredService<IEventPublisher>();
            await publisher.PublishAsync(new NoteTaken("poison", 0));
            for (var n = 1; n <= 5; n++) await publisher.PublishAsync(new NoteTaken($"k{n}", n));
            var dlq = host.Services.GetRequiredService<DeadLetterQueue>();
            IReadOnlyList<DeadLetter> letters = [];
            await KafkaHosts.WaitUntilAsync(() => handled.Count >= 5 && (letters = dlq.ListAsync(topic, "fragile").Result).Count >= 1, "5 handled and 1 dead letter");
            var letter = Assert.Single(letters);
            Assert.Contains("FormatException", letter.ExceptionType ?? "", StringComparison.Ordinal);
            Assert.Equal(4, attempts[0]); // 1 + 1 at once, then 1 + 1 in the delayed round
        }
        finally
        {
            await host.StopAndDisposeAsync();
        }
    }

    [Fact]
    public async Task An_unknown_librdkafka_property_is_refused_naming_it_and_a_reserved_one_naming_why()
    {
        var unknown = await Assert.ThrowsAnyAsync<Exception>(async () =>
        {
            await using var transport = new KafkaTransport(new KafkaTransportOptions { BootstrapServers = cluster.BootstrapServers, Properties = { ["no.such.property"] = "1" } });
        });
        Assert.Contains("no.such.property", unknown.Message, StringComparison.Ordinal);

        var reserved = Assert.Throws<ArgumentException>(() =>
            new KafkaTransportOptions { BootstrapServers = cluster.BootstrapServers, Properties = { ["enable.auto.commit"] = "true" } }.Validate());
        Assert.Contains("enable.auto.commit", reserved.Message, StringComparison.Ordinal);
        Assert.Contains("Herald sets it", reserved.Message, StringComparison.Ordinal);

        var missing = Assert.Throws<ArgumentException>(() => new KafkaTransportOptions().Validate());
        Assert.Contains("BootstrapServers", missing.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_topic_is_created_with_its_partitions_and_the_transport_reads_offsets_and_records_outside_any_group()
    {
        var topic = MockCluster.Unique("raw");
        await using (var strict = new KafkaTransport(new KafkaTransportOptions { BootstrapServers = cluster.BootstrapServers, TopicCreation = TopicCreation.Off }))
        {
            Assert.Throws<UnknownTopicException>(() => strict.GetPartitionCount(topic)); // looking creates nothing
            var off = await Assert.ThrowsAsync<HeraldException>(async () => await strict.EnsureTopicAsync(new TopicSpec(topic, 4)));
            Assert.Contains(topic, off.Message, StringComparison.Ordinal);
            Assert.Contains("TopicCreation is Off", off.Message, StringComparison.Ordinal);
        }
        await using var transport = new KafkaTransport(new KafkaTransportOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            Linger = TimeSpan.Zero,
            TopicCreation = TopicCreation.BrokerAutoCreate,
        });
        await transport.EnsureTopicAsync(new TopicSpec(topic, 4));
        await transport.EnsureTopicAsync(new TopicSpec(topic, 4)); // again: nothing changes
        Assert.Equal(4, transport.GetPartitionCount(topic));
        var records = Enumerable.Range(0, 5).Select(i => new OutgoingRecord("k"u8.ToArray(), Encoding.UTF8.GetBytes($"v{i}"), [new Herald.Log.LogHeader("h", new byte[] { (byte)i })])).ToList();
        await transport.ProduceManyAsync(topic, 2, records);
        var offset = await transport.ProduceAsync(topic, 2, new OutgoingRecord(null, "last"u8.ToArray(), null));
        Assert.Equal(5, offset);
        Assert.Equal(new PartitionOffsets(0, 6), transport.GetOffsets(topic, 2));
        var read = new List<TransportRecord>();
        await foreach (var r in transport.ReadAsync(topic, 2, 1)) read.Add(r);
        Assert.Equal([1L, 2, 3, 4, 5], read.Select(r => r.Offset));
        Assert.Equal("v1", Encoding.UTF8.GetString(read[0].Value!.Value.Span));
        Assert.Equal([(byte)1], read[0].Headers.Single(h => h.Key == "h").Value.ToArray());
        Assert.True(read[^1].Key is null, $"key of {read[^1].Offset}: {read[^1].Key?.Length} bytes, value {System.Text.Encoding.UTF8.GetString(read[^1].Value!.Value.Span)}");
    }

    [Fact]
    public async Task A_retry_partition_goes_with_its_event_partition_and_commits_its_offsets_outside_the_groups_assignment()
    {
        var topic = MockCluster.Unique("lead");
        var retry = topic + ".g.retry";
        var group = MockCluster.Unique("g");
        var options = new KafkaTransportOptions { BootstrapServers = cluster.BootstrapServers };
        KafkaHosts.ForMockCluster(options);
        await using var transport = new KafkaTransport(options);
        await transport.EnsureTopicAsync(new TopicSpec(topic, 4));
        await transport.EnsureTopicAsync(new TopicSpec(retry, 4));
        await transport.ProduceAsync(retry, 1, new OutgoingRecord(null, "r"u8.ToArray(), null));
        var spec = new ConsumerSpec
        {
            Group = group,
            Topics = [topic, retry],
            AlwaysFromEarliest = new HashSet<string> { retry },
            Followers = new Dictionary<string, string> { [retry] = topic },
        };
        // No fetches: the consumers poll by themselves between fetches, so the group forms anyway.
        await using var a = transport.CreateConsumer(spec);
        await using var b = transport.CreateConsumer(spec);
        static HashSet<int> Of(ITransportConsumer c, string t) => c.Assignment.Where(p => p.Topic == t).Select(p => p.Partition).ToHashSet();
        await KafkaHosts.WaitUntilAsync(() => Of(a, topic).Count == 2 && Of(b, topic).Count == 2, "the event topic's 4 partitions shared 2 and 2");
        await KafkaHosts.WaitUntilAsync(() => Of(a, retry).SetEquals(Of(a, topic)) && Of(b, retry).SetEquals(Of(b, topic)), "each member's retry partitions the same as its event partitions");

        var owner = Of(a, retry).Contains(1) ? a : b;
        await owner.CommitAsync([new(new Herald.Transport.TopicPartition(retry, 1), 1)]);
        await using var later = transport.CreateConsumer(spec);
        Assert.Equal(1, later.GetCommitted(new Herald.Transport.TopicPartition(retry, 1)));
    }

    [Fact]
    public async Task A_full_producer_queue_makes_publishes_wait_and_keeps_their_order()
    {
        var topic = MockCluster.Unique("full");
        var options = new KafkaTransportOptions { BootstrapServers = cluster.BootstrapServers, ProducerQueueBytes = 1024 * 1024 };
        KafkaHosts.ForMockCluster(options);
        await using var transport = new KafkaTransport(options);
        await transport.EnsureTopicAsync(new TopicSpec(topic, 4));
        var body = new byte[8 * 1024]; // 3.2 MiB in all: the mock keeps 5 MiB a partition
        OutgoingRecord Numbered(int n) => new(null, BitConverter.GetBytes(n).Concat(body).ToArray(), null);
        // Into a 1 MiB queue: single records issued without waiting for each, then a batch.
        var singles = Enumerable.Range(0, 200).Select(n => transport.ProduceAsync(topic, 0, Numbered(n)).AsTask()).ToList();
        await transport.ProduceManyAsync(topic, 0, Enumerable.Range(200, 200).Select(Numbered).ToList());
        var offsets = await Task.WhenAll(singles);
        Assert.True(transport.QueueFullWaits > 0, "the queue never filled: the test proves nothing");
        Assert.Equal(Enumerable.Range(0, 200).Select(n => (long)n), offsets);
        var read = new List<int>();
        await foreach (var r in transport.ReadAsync(topic, 0, 0)) read.Add(BitConverter.ToInt32(r.Value!.Value.Span));
        Assert.Equal(Enumerable.Range(0, 400), read);
    }

    [Fact]
    public async Task Security_settings_pass_through_to_librdkafka_and_a_bad_one_fails_the_start_naming_it()
    {
        var missing = Path.Combine(Path.GetTempPath(), $"herald-no-such-ca-{Guid.NewGuid():N}.pem");
        var options = new KafkaTransportOptions
        {
            BootstrapServers = cluster.BootstrapServers,
            Properties =
            {
                ["security.protocol"] = "SASL_SSL",
                ["sasl.mechanisms"] = "SCRAM-SHA-512",
                ["sasl.username"] = "inventory",
                ["sasl.password"] = "secret",
                ["ssl.ca.location"] = missing,
            },
        };
        var refused = Assert.Throws<HeraldException>(() => new KafkaTransport(options));
        Assert.Contains("ssl.ca.location", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_partition_paused_when_taken_away_starts_unpaused_when_it_comes_back()
    {
        var topic = MockCluster.Unique("paused");
        var options = new KafkaTransportOptions { BootstrapServers = cluster.BootstrapServers };
        KafkaHosts.ForMockCluster(options);
        await using var transport = new KafkaTransport(options);
        await transport.EnsureTopicAsync(new TopicSpec(topic, 4));
        var spec = new ConsumerSpec { Group = MockCluster.Unique("g"), Topics = [topic] };
        await using var a = transport.CreateConsumer(spec);
        await KafkaHosts.WaitUntilAsync(() => a.Assignment.Count == 4, "the first member owning the 4 partitions");
        a.Pause(a.Assignment.ToList()); // the pipeline's budget is full
        var b = transport.CreateConsumer(spec);
        HashSet<int> moved;
        try
        {
            await KafkaHosts.WaitUntilAsync(() => a.Assignment.Count == 2 && b.Assignment.Count == 2, "the partitions shared 2 and 2");
            moved = b.Assignment.Select(p => p.Partition).ToHashSet();
        }
        finally
        {
            await b.DisposeAsync();
        }
        await KafkaHosts.WaitUntilAsync(() => a.Assignment.Count == 4, "the second member's partitions back with the first");
        for (var p = 0; p < 4; p++) await transport.ProduceAsync(topic, p, new OutgoingRecord(null, "r"u8.ToArray(), null));
        // The two that came back were never resumed by the pipeline, which takes new partitions
        // for unpaused; the two that stayed are still paused.
        var fetched = new List<TransportRecord>();
        using (var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while (fetched.Select(r => r.Partition).Distinct().Count() < moved.Count)
                await a.FetchAsync(fetched, 100, 1 << 20, deadline.Token);
        }
        await Task.Delay(500);
        using (var quiet = new CancellationTokenSource(TimeSpan.FromMilliseconds(500)))
        {
            try
            {
                await a.FetchAsync(fetched, 100, 1 << 20, quiet.Token);
            }
            catch (OperationCanceledException)
            {
            }
        }
        Assert.Equal(moved.Order(), fetched.Select(r => r.Partition).Distinct().Order());
    }
}
