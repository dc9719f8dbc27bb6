namespace Herald.Kafka;

public static class KafkaHeraldBuilderExtensions
{
    /// <summary>Kafka as the transport, in place of the embedded log: the only line that changes.
    /// <c>h.UseKafka("broker1:9092,broker2:9092", k => k.Properties["security.protocol"] = "SASL_SSL")</c>.
    /// The options are validated now; an unknown librdkafka property is refused when the transport
    /// starts, with its name.</summary>
    public static HeraldBuilder UseKafka(this HeraldBuilder herald, string bootstrapServers, Action<KafkaTransportOptions>? configure = null)
    {
        ArgumentNullException.ThrowIfNull(herald);
        var options = new KafkaTransportOptions { BootstrapServers = bootstrapServers };
        configure?.Invoke(options);
        options.Validate();
        return herald.UseTransport(_ => new KafkaTransport(options));
    }
}
