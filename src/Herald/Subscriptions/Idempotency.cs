namespace Herald.Subscriptions;

/// <summary>How a subscription recognises a redelivered event (delivery is at least once: after a
/// crash or a rebalance, events handled but not yet committed come again).</summary>
public enum Idempotency
{
    /// <summary>Nothing is recorded: handlers must be idempotent themselves.</summary>
    None,

    /// <summary>Effectively once: each event is handled inside a transaction on Herald's store (the
    /// service's own database), which records the event's id in the inbox together with the
    /// handler's effects (<see cref="EventContext.Transaction"/>) and the events it publishes (into
    /// the outbox). A redelivered event whose handling committed is acknowledged without running the
    /// handler. Needs <c>h.UseSqlite(...)</c> or <c>h.UsePostgres(...)</c>.</summary>
    Inbox,

    /// <summary>The cheaper case, for effects outside a database transaction: an event whose id the
    /// dedupe store holds is skipped, and the id is marked for <see cref="SubscriptionOptions.DedupeTtl"/>
    /// once the handler succeeded. A crash between the handler's effects and the mark lets the
    /// redelivery run again; nothing is ever skipped that did not succeed. Needs <c>h.UseDedupe(...)</c>.</summary>
    Dedupe,
}
