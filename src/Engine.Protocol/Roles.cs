namespace Engine.Protocol;

/// <summary>What an API key allows (HelloOk.Roles). Explicit and append-only.</summary>
[Flags]
public enum Roles : byte
{
    /// <summary>Nothing but Health.</summary>
    None = 0,
    /// <summary>Recommend, Generate, Events.</summary>
    Storefront = 1,
    /// <summary>CatalogUpsert, Experiment, Stats, FeedbackExport.</summary>
    Admin = 2,
}

/// <summary>Features a server offers (HelloOk.Capabilities) or a client understands (Hello.Capabilities). Explicit and append-only.</summary>
[Flags]
public enum Capabilities : ulong
{
    /// <summary>Nothing.</summary>
    None = 0,
    /// <summary>Recommend answers with a ranking.</summary>
    Recommend = 1,
    /// <summary>Generate has a model behind it.</summary>
    Generate = 2,
    /// <summary>Events are accepted.</summary>
    Events = 4,
    /// <summary>CatalogUpsert has a catalog behind it.</summary>
    CatalogAdmin = 8,
    /// <summary>Experiment commands are served.</summary>
    Experiments = 16,
    /// <summary>Stats are served.</summary>
    Stats = 32,
    /// <summary>FeedbackExport has a control plane behind it.</summary>
    FeedbackExport = 64,
}

/// <summary>Which role each request opcode needs.</summary>
public static class OpcodeRoles
{
    /// <summary>The role a client must hold to send <paramref name="opcode"/>; <see cref="Roles.None"/> for Hello, Health and Cancel.</summary>
    public static Roles Required(Opcode opcode) => opcode switch
    {
        Opcode.Recommend or Opcode.Generate or Opcode.Events => Roles.Storefront,
        Opcode.CatalogUpsert or Opcode.Experiment or Opcode.Stats or Opcode.FeedbackExport => Roles.Admin,
        _ => Roles.None,
    };
}
