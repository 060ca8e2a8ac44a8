namespace Engine.Control;

/// <summary>A request named something the control plane does not know (experiment, arm, product).</summary>
[GenerateSerializer]
public sealed class UnknownEntityException : Exception
{
    /// <summary>Creates the exception with a message that names what was unknown.</summary>
    public UnknownEntityException(string message) : base(message) { }
}
