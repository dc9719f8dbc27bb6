namespace Herald;

/// <summary>The root of every runtime fault Herald reports that a caller can act on.</summary>
public class HeraldException : Exception
{
    public HeraldException(string message) : base(message) { }

    public HeraldException(string message, Exception? inner) : base(message, inner) { }
}
