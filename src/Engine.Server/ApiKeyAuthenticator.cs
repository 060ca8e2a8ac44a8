using System.Security.Cryptography;
using System.Text;
using Engine.Protocol;

namespace Engine.Server;

/// <summary>Maps an API key to its roles. Keys are compared in constant time.</summary>
public sealed class ApiKeyAuthenticator
{
    private readonly (byte[] Key, Roles Roles)[] _keys;
    private readonly bool _loopbackOnly;

    /// <summary>Creates the authenticator from the server's key lists.</summary>
    public ApiKeyAuthenticator(ServerOptions options)
    {
        _loopbackOnly = options.LoopbackOnly;
        _keys = options.StorefrontKeys.Select(k => (Encoding.UTF8.GetBytes(k), Roles.Storefront))
            .Concat(options.AdminKeys.Select(k => (Encoding.UTF8.GetBytes(k), Roles.Storefront | Roles.Admin)))
            .ToArray();
    }

    /// <summary>
    /// The roles of <paramref name="apiKey"/>, or <see cref="Roles.None"/> when it is refused. Without
    /// configured keys a loopback client gets every role and any other client is refused.
    /// </summary>
    public Roles Authenticate(string? apiKey, bool isLoopback)
    {
        if (_loopbackOnly) return isLoopback ? Roles.Storefront | Roles.Admin : Roles.None;
        byte[] presented = Encoding.UTF8.GetBytes(apiKey ?? "");
        Roles roles = Roles.None;
        foreach (var (key, keyRoles) in _keys)
            if (CryptographicOperations.FixedTimeEquals(presented, key)) roles |= keyRoles;
        return roles;
    }
}
