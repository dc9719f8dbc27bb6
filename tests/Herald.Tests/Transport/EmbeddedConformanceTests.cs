using Herald.Embedded;
using Herald.Log;
using Herald.Testing;

namespace Herald.Tests.Transport;

/// <summary>The transport conformance suite on the embedded log: hosts of one test share one log,
/// as the processes of a service share a broker.</summary>
public sealed class EmbeddedConformanceTests : TransportConformance
{
    protected override ConformanceBroker OpenBroker() => new EmbeddedBroker();

    private sealed class EmbeddedBroker : ConformanceBroker
    {
        private readonly TempDirectory _dir = new("conformance");
        private readonly EmbeddedLog _log;

        public EmbeddedBroker() => _log = EmbeddedLog.Open(_dir.Path);

        public override TimeSpan RebalanceWithin => TimeSpan.FromSeconds(1);

        protected override void UseTransport(HeraldBuilder herald) => herald.UseTransport(_ => new EmbeddedTransport(_log, ownsLog: false));

        public override async ValueTask DisposeAsync()
        {
            await _log.DisposeAsync();
            _dir.Dispose();
        }
    }
}
