"""Which addresses a fetch may connect to: public ones, and the private networks an operator
allowed. Checked at connect time on the very address connected to, so neither another
spelling of an address (0x7f000001, 2130706433, [::ffff:127.0.0.1]) nor a name that
resolves to something else the second time (DNS rebinding) gets past it."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
EVERY_NETWORK: tuple[Network, ...] = (ip_network("0.0.0.0/0"), ip_network("::/0"))


def is_public(address: Address) -> bool:
    """Globally routable: not loopback, private (RFC 1918, unique-local), link-local, CGNAT,
    unspecified, multicast or reserved, in any of the IPv6 forms that carry an IPv4 address."""
    if isinstance(address, IPv6Address):
        if address.ipv4_mapped is not None:
            return is_public(address.ipv4_mapped)
        if address.sixtofour is not None and not is_public(address.sixtofour):
            return False
    local = (address.is_loopback or address.is_link_local or address.is_private
             or address.is_unspecified or address.is_multicast or address.is_reserved)
    return address.is_global and not local  # is_global alone lets multicast through


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """Public addresses, and those in `allowed` (the operator's allow_private_networks)."""

    allowed: tuple[Network, ...] = ()

    def permits(self, address: Address) -> bool:
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return is_public(address) or any(
            address.version == net.version and address in net for net in self.allowed)


class RefusedAddress(NewConnectionError):
    """Every address the host name resolved to is one the policy refuses: nothing was sent
    to it, not even a TCP handshake, so the error says nothing about what listens there."""

    def __init__(self, conn: HTTPConnection, address: Address) -> None:
        if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped  # named as the operator would write it
        super().__init__(conn, f"refused: {address} is a private address")
        self.address = address


def guarded_pools(policy: NetworkPolicy) -> dict[str, type[HTTPConnectionPool]]:
    """Pool classes for urllib3's PoolManager whose connections obey `policy`."""

    class Connection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return connect(self, policy)

    class TLSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:  # TLS still checks the name, not the address
            return connect(self, policy)

    class Pool(HTTPConnectionPool):
        ConnectionCls = Connection

    class TLSPool(HTTPSConnectionPool):
        ConnectionCls = TLSConnection

    return {"http": Pool, "https": TLSPool}


def connect(conn: HTTPConnection, policy: NetworkPolicy) -> socket.socket:
    """Resolve once, keep the permitted addresses, connect to the first that answers; errors
    as urllib3's own connection raises them."""
    host = conn.host.strip("[]")
    try:
        infos = socket.getaddrinfo(host, conn.port, allowed_gai_family(), socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise NameResolutionError(host, conn, exc) from exc
    permitted = [info for info in infos if policy.permits(_address(info[4]))]
    if not permitted:
        if not infos:
            raise NewConnectionError(conn, f"no address for {host}")
        raise RefusedAddress(conn, _address(infos[0][4]))
    error: OSError | None = None
    for family, kind, proto, _, sockaddr in permitted:
        sock = socket.socket(family, kind, proto)
        try:
            for option in conn.socket_options or ():
                sock.setsockopt(*option)
            if conn.timeout is None or isinstance(conn.timeout, int | float):
                sock.settimeout(conn.timeout)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    if isinstance(error, TimeoutError):
        raise ConnectTimeoutError(
            conn, f"connection to {host} timed out (connect timeout={conn.timeout})") from error
    raise NewConnectionError(conn, f"failed to establish a new connection: {error}") from error


def _address(sockaddr: tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes]) -> Address:
    return ip_address(str(sockaddr[0]))

