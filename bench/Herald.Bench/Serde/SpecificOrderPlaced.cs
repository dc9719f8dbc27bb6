// The OrderPlaced schema as Apache.Avro's avrogen generates it (ISpecificRecord classes), for
// Confluent's AvroSerializer<T> and AvroDeserializer<T> with specific records. Written by hand in
// avrogen's shape: a static _SCHEMA, fields named as in the schema, Get and Put by position.
// The schema is Herald's generated one for Herald.Bench.Serde.OrderPlaced in this namespace
// (AvroSerde's setup checks that they agree).
#pragma warning disable CA2227 // avrogen's array properties have setters
#pragma warning disable CA1050, IDE1006
namespace Herald.Bench.Serde.Specific;

public enum OrderStatus
{
    Placed,
    Paid,
    Shipped,
    Cancelled,
}

public partial class OrderLine : global::Avro.Specific.ISpecificRecord
{
    public static readonly global::Avro.Schema _SCHEMA = global::Avro.Schema.Parse(
        """{"type":"record","name":"OrderLine","namespace":"Herald.Bench.Serde.Specific","fields":[{"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unitPrice","type":"double"}]}""");

    private string _sku = "";
    private int _quantity;
    private double _unitPrice;

    public virtual global::Avro.Schema Schema => _SCHEMA;

    public string sku { get => _sku; set => _sku = value; }
    public int quantity { get => _quantity; set => _quantity = value; }
    public double unitPrice { get => _unitPrice; set => _unitPrice = value; }

    public virtual object Get(int fieldPos) => fieldPos switch
    {
        0 => sku,
        1 => quantity,
        2 => unitPrice,
        _ => throw new global::Avro.AvroRuntimeException("Bad index " + fieldPos + " in Get()"),
    };

    public virtual void Put(int fieldPos, object fieldValue)
    {
        switch (fieldPos)
        {
            case 0: sku = (string)fieldValue; break;
            case 1: quantity = (int)fieldValue; break;
            case 2: unitPrice = (double)fieldValue; break;
            default: throw new global::Avro.AvroRuntimeException("Bad index " + fieldPos + " in Put()");
        }
    }
}

public partial class OrderPlaced : global::Avro.Specific.ISpecificRecord
{
    public static readonly global::Avro.Schema _SCHEMA = global::Avro.Schema.Parse(
        """{"type":"record","name":"OrderPlaced","namespace":"Herald.Bench.Serde.Specific","fields":[{"name":"orderId","type":{"type":"string","logicalType":"uuid"}},{"name":"customerId","type":"string"},{"name":"currency","type":"string"},{"name":"itemCount","type":"int"},{"name":"total","type":{"type":"bytes","logicalType":"decimal","precision":18,"scale":2}},{"name":"placedAt","type":{"type":"long","logicalType":"timestamp-micros"}},{"name":"status","type":{"type":"enum","name":"OrderStatus","symbols":["Placed","Paid","Shipped","Cancelled"],"namespace":"Herald.Bench.Serde.Specific"}},{"name":"couponCode","type":["null","string"],"default":null},{"name":"lines","type":{"type":"array","items":{"type":"record","name":"OrderLine","namespace":"Herald.Bench.Serde.Specific","fields":[{"name":"sku","type":"string"},{"name":"quantity","type":"int"},{"name":"unitPrice","type":"double"}]}}}]}""");

    private global::System.Guid _orderId;
    private string _customerId = "";
    private string _currency = "";
    private int _itemCount;
    private global::Avro.AvroDecimal _total;
    private global::System.DateTime _placedAt;
    private OrderStatus _status;
    private string? _couponCode;
    private global::System.Collections.Generic.IList<OrderLine> _lines = [];

    public virtual global::Avro.Schema Schema => _SCHEMA;

    public global::System.Guid orderId { get => _orderId; set => _orderId = value; }
    public string customerId { get => _customerId; set => _customerId = value; }
    public string currency { get => _currency; set => _currency = value; }
    public int itemCount { get => _itemCount; set => _itemCount = value; }
    public global::Avro.AvroDecimal total { get => _total; set => _total = value; }
    public global::System.DateTime placedAt { get => _placedAt; set => _placedAt = value; }
    public OrderStatus status { get => _status; set => _status = value; }
    public string? couponCode { get => _couponCode; set => _couponCode = value; }
    public global::System.Collections.Generic.IList<OrderLine> lines { get => _lines; set => _lines = value; }

    public virtual object Get(int fieldPos) => fieldPos switch
    {
        0 => orderId,
        1 => customerId,
        2 => currency,
        3 => itemCount,
        4 => total,
        5 => placedAt,
        6 => status,
        7 => couponCode!,
        8 => lines,
        _ => throw new global::Avro.AvroRuntimeException("Bad index " + fieldPos + " in Get()"),
    };

    public virtual void Put(int fieldPos, object fieldValue)
    {
        switch (fieldPos)
        {
            case 0: orderId = (global::System.Guid)fieldValue; break;
            case 1: customerId = (string)fieldValue; break;
            case 2: currency = (string)fieldValue; break;
            case 3: itemCount = (int)fieldValue; break;
            case 4: total = (global::Avro.AvroDecimal)fieldValue; break;
            case 5: placedAt = (global::System.DateTime)fieldValue; break;
            case 6: status = (OrderStatus)fieldValue; break;
            case 7: couponCode = (string?)fieldValue; break;
            case 8: lines = (global::System.Collections.Generic.IList<OrderLine>)fieldValue; break;
            default: throw new global::Avro.AvroRuntimeException("Bad index " + fieldPos + " in Put()");
        }
    }
}
