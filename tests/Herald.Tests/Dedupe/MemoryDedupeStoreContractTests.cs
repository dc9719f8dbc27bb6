using Herald.Dedupe;
using Herald.Testing;

namespace Herald.Tests.Dedupe;

/// <summary>The dedupe store contract on <see cref="MemoryDedupeStore"/>, on the system clock.
/// Its bound and eviction are in <see cref="MemoryDedupeStoreTests"/>.</summary>
public sealed class MemoryDedupeStoreContractTests : DedupeStoreContract
{
    protected override IDedupeStore CreateStore() => new MemoryDedupeStore(capacity: 1_000);
}
