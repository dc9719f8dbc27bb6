using Herald.Testing;
using OrderFlow;
using OrderFlow.OrderView;
using Xunit.Abstractions;

namespace Herald.Kafka.Tests;

/// <summary>The OrderFlow sample with --kafka on librdkafka's mock cluster: the same services,
/// events and handlers as on the embedded log, only the transport differs, and the summary adds
/// up. A cluster of its own: the sample's topic and group names are fixed.</summary>
public sealed class OrderFlowOnKafkaTests(MockCluster cluster, ITestOutputHelper output) : IClassFixture<MockCluster>
{
    [Fact]
    public async Task OrderFlow_on_Kafka_adds_up_with_compensations_and_dead_letters()
    {
        var data = Directory.CreateTempSubdirectory("herald-orderflow-kafka-");
        var options = new OrderFlowOptions
        {
            Orders = 60,
            Seed = 7,
            DataDirectory = data.FullName,
            Kafka = cluster.BootstrapServers,
            KafkaBrokerCreatesTopics = true, // the mock has no CreateTopics
            KafkaSettings = KafkaHosts.ForMockCluster,
            Fresh = true,
            Timeout = TimeSpan.FromSeconds(120),
            ProgressInterval = TimeSpan.FromMilliseconds(500),
        };
        var text = new StringWriter();
        try
        {
            var summary = await OrderFlowApp.RunAsync(options, text);
            Assert.True(summary.Finished, "not every order reached a final state in time");
            Assert.True(summary.AddsUp, string.Join(Environment.NewLine, summary.Problems));
            foreach (var state in OrderStates.Final) Assert.Equal(summary.Expected[state], summary.Count(state));
            Assert.True(summary.PoisonOrders > 0);
            Assert.Equal(summary.PoisonOrders, summary.DeadLetters);
            OrderFlowUpcasts.AssertUpcastAndFinal(summary); // ce_dataversion 1 survives Kafka's headers
            Assert.Contains($"events on Kafka at {cluster.BootstrapServers}", text.ToString(), StringComparison.Ordinal);
        }
        finally
        {
            output.WriteLine(text.ToString());
            data.Delete(recursive: true);
        }
    }
}
