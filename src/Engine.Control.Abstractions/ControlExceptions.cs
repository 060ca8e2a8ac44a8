namespace Engine.Control;

/// <summary>A request named something the control plane does not know (experiment, arm, product).</summary>
[GenerateSerializer]
public sealed class UnknownEntityException : Exception
{
    /// <summary>Creates the exception with a message that names what was unknown.</summary>
    public UnknownEntityException(string message) : base(message) { }
}

/// <summary>The event journal (Redis) did not confirm a write: the events of that call are NOT
/// acknowledged and must be sent again (retries are idempotent by event id).</summary>
[GenerateSerializer]
public sealed class EventJournalUnavailableException : Exception
{
    /// <summary>Creates the exception; the message names the store and says nothing was acknowledged.</summary>
    public EventJournalUnavailableException(string message, Exception? inner = null) : base(message, inner) { }
}
