using Microsoft.EntityFrameworkCore;

namespace Herald.EntityFrameworkCore.Tests.Kit;

public sealed class Order
{
    public string Id { get; set; } = "";
    public string Key { get; set; } = "";
    public long AmountCents { get; set; }
}

/// <summary>A charge row per handled order; its own id, so that a second charge of an order would show as a second row.</summary>
public sealed class Charge
{
    public long Id { get; set; }
    public string OrderId { get; set; } = "";
    public long AmountCents { get; set; }

    /// <summary>A decimal: EF's SQLite provider compares it with a SQL function of its own (ef_compare).</summary>
    public decimal Amount { get; set; }
}

/// <summary>The service's own model, in the same SQLite file as Herald's tables.</summary>
public sealed class ShopDb(DbContextOptions<ShopDb> options) : DbContext(options)
{
    public DbSet<Order> Orders => Set<Order>();

    public DbSet<Charge> Charges => Set<Charge>();

    /// <summary>Options for a context on <paramref name="connectionString"/>, with Herald's interceptor unless told otherwise.</summary>
    public static DbContextOptions<ShopDb> Options(string connectionString, bool heraldOutbox = true)
    {
        var builder = new DbContextOptionsBuilder<ShopDb>().UseSqlite(connectionString);
        return (heraldOutbox ? builder.UseHeraldOutbox() : builder).Options;
    }

    /// <summary>Creates the model's tables. Before Herald's: EnsureCreated does nothing in a database that has tables already.</summary>
    public static async Task CreateAsync(string connectionString)
    {
        await using var db = new ShopDb(Options(connectionString));
        await db.Database.EnsureCreatedAsync();
    }
}
