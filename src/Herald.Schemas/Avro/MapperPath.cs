using System.Globalization;
using System.Text;

namespace Herald.Schemas.Avro;

/// <summary>Where the object mapper is in an object (<c>OrderPlaced.lines[2].sku</c>), for its
/// error messages: a stack of segments, rendered only when a message names it. One is reused per
/// codec call (bench serde: a string built per field per record cost more than the encoding).</summary>
internal sealed class MapperPath
{
    private const int FieldMark = -1;
    private const int KeyMark = -2;

    private string _root = "";
    private (string? Name, int Index)[] _segments = new (string?, int)[8];
    private int _depth;

    /// <summary>Empties the path down to <paramref name="root"/> (the record's name).</summary>
    public MapperPath Start(string root)
    {
        _root = root;
        _depth = 0;
        return this;
    }

    /// <summary>A record's field (<c>.name</c>).</summary>
    public void Field(string name) => Push(name, FieldMark);

    /// <summary>An array's item (<c>[i]</c>).</summary>
    public void Index(int index) => Push(null, index);

    /// <summary>A map's value (<c>{key}</c>).</summary>
    public void Key(string key) => Push(key, KeyMark);

    public void Pop() => _depth--;

    public override string ToString()
    {
        var text = new StringBuilder(_root);
        for (var i = 0; i < _depth; i++)
        {
            var (name, index) = _segments[i];
            if (index == FieldMark) text.Append('.').Append(name);
            else if (index == KeyMark) text.Append('{').Append(name).Append('}');
            else text.Append('[').Append(index.ToString(CultureInfo.InvariantCulture)).Append(']');
        }
        return text.ToString();
    }

    private void Push(string? name, int index)
    {
        if (_depth == _segments.Length) Array.Resize(ref _segments, _depth * 2);
        _segments[_depth++] = (name, index);
    }
}
