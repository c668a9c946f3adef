"""A small, bounds-checked reader of Qt binary resource files (.rcc).

Layout (Qt's rcc.cpp/qresource.cpp; every integer big-endian):

  header   "qres", u32 format version (1..3), u32 tree offset, u32 data offset,
           u32 names offset, and for version >= 3 a u32 of overall flags.
  tree     nodes of 14 bytes (version 1) or 22 bytes (version >= 2), node 0 is
           the root directory:
             u32 name offset (into names), u16 flags
             (1 = zlib-compressed, 2 = directory, 4 = zstd-compressed), then
             directory: u32 child count, u32 index of the first child node
             file:      u16 territory, u16 language, u32 data offset (into data)
             version >= 2: u64 last-modified time (ms since the epoch)
  names    u16 length in UTF-16 code units, u32 hash, the name in UTF-16BE
  data     u32 size, then the bytes; a zlib-compressed entry holds Qt's
           qCompress format: u32 uncompressed size, then a zlib stream.

Every offset and size is checked against the file before it is used, children
must lie inside the tree, and a node may not be visited twice (no cycles).
zstd-compressed entries are reported as unsupported (Python's standard library
has no zstd).
"""
import struct
import zlib

MAGIC = b"qres"
FLAG_ZLIB = 1
FLAG_DIR = 2
FLAG_ZSTD = 4
MAX_DEPTH = 64
MAX_ENTRY = 1 << 31  # 2 GiB: larger entries are refused


class RccError(ValueError):
    """The file is not a valid .rcc, or an entry cannot be decoded."""


class RccEntry:
    __slots__ = ("path", "flags", "offset", "language", "territory")

    def __init__(self, path, flags, offset, language, territory):
        self.path = path
        self.flags = flags
        self.offset = offset
        self.language = language
        self.territory = territory

    @property
    def compression(self):
        if self.flags & FLAG_ZSTD:
            return "zstd"
        if self.flags & FLAG_ZLIB:
            return "zlib"
        return "none"


class RccFile:
    """Parse an .rcc image held in memory. `entries` lists the files."""

    def __init__(self, data, name="<rcc>"):
        self.data = bytes(data)
        self.name = name
        if len(self.data) < 20 or self.data[:4] != MAGIC:
            raise RccError(f"{name}: not a Qt resource file (no 'qres' magic)")
        self.version, self.tree, self.data_off, self.names = struct.unpack(">IIII", self.data[4:20])
        if self.version < 1 or self.version > 3:
            raise RccError(f"{name}: unsupported rcc format version {self.version}")
        self.node_size = 14 if self.version == 1 else 22
        for what, off in (("tree", self.tree), ("data", self.data_off), ("names", self.names)):
            if off >= len(self.data):
                raise RccError(f"{name}: {what} offset {off} is past the end ({len(self.data)} bytes)")
        self.entries = []
        self._walk()

    def _need(self, off, n, what):
        if off < 0 or n < 0 or off + n > len(self.data):
            raise RccError(f"{self.name}: {what} at {off} (+{n}) is outside the file ({len(self.data)} bytes)")

    def _node(self, index):
        off = self.tree + index * self.node_size
        self._need(off, self.node_size, f"tree node {index}")
        name_off, flags = struct.unpack_from(">IH", self.data, off)
        if flags & FLAG_DIR:
            count, first = struct.unpack_from(">II", self.data, off + 6)
            return name_off, flags, count, first
        territory, language, data_off = struct.unpack_from(">HHI", self.data, off + 6)
        return name_off, flags, (territory, language), data_off

    def _name(self, name_off):
        off = self.names + name_off
        self._need(off, 6, "name header")
        (length,) = struct.unpack_from(">H", self.data, off)
        self._need(off + 6, 2 * length, "name")
        try:
            return self.data[off + 6 : off + 6 + 2 * length].decode("utf-16-be")
        except UnicodeDecodeError as e:
            raise RccError(f"{self.name}: bad UTF-16 name at {off}: {e}") from None

    def _walk(self):
        seen = set()
        max_nodes = (len(self.data) - self.tree) // self.node_size
        stack = [(0, "", 0)]
        while stack:
            index, prefix, depth = stack.pop()
            if index in seen:
                raise RccError(f"{self.name}: tree node {index} is reached twice (corrupt tree)")
            if depth > MAX_DEPTH:
                raise RccError(f"{self.name}: directories nested deeper than {MAX_DEPTH}")
            seen.add(index)
            name_off, flags, a, b = self._node(index)
            name = "" if index == 0 else self._name(name_off)
            if index == 0 and not flags & FLAG_DIR:
                raise RccError(f"{self.name}: the root node is not a directory")
            if "/" in name or name in (".", ".."):
                raise RccError(f"{self.name}: unsafe entry name {name!r}")
            path = name if not prefix else f"{prefix}/{name}"
            if flags & FLAG_DIR:
                count, first = a, b
                if first + count > max_nodes or (count and first == 0):
                    raise RccError(f"{self.name}: directory '{path or '/'}' has children {first}..{first + count - 1} "
                                   f"outside the tree ({max_nodes} nodes)")
                for child in range(first + count - 1, first - 1, -1):
                    stack.append((child, path, depth + 1))
            else:
                territory, language = a
                self.entries.append(RccEntry(path, flags, b, language, territory))
        self.entries.sort(key=lambda e: (e.path, e.language, e.territory))

    def read(self, entry):
        """The bytes of a file entry (decompressed)."""
        off = self.data_off + entry.offset
        self._need(off, 4, f"size of '{entry.path}'")
        (size,) = struct.unpack_from(">I", self.data, off)
        self._need(off + 4, size, f"data of '{entry.path}'")
        blob = self.data[off + 4 : off + 4 + size]
        if entry.flags & FLAG_ZSTD:
            raise RccError(f"{self.name}: '{entry.path}' is zstd-compressed (not supported without a zstd module)")
        if entry.flags & FLAG_ZLIB:
            if size < 4:
                raise RccError(f"{self.name}: compressed '{entry.path}' is shorter than its header")
            (expect,) = struct.unpack_from(">I", blob, 0)
            if expect > MAX_ENTRY:
                raise RccError(f"{self.name}: '{entry.path}' claims {expect} bytes uncompressed")
            d = zlib.decompressobj()
            try:
                out = d.decompress(blob[4:], expect + 1)
            except zlib.error as e:
                raise RccError(f"{self.name}: '{entry.path}': corrupt zlib data: {e}") from None
            if len(out) != expect or not d.eof:
                raise RccError(f"{self.name}: '{entry.path}': {len(out)} bytes decompressed, {expect} announced")
            return out
        return blob


def open_rcc(path):
    with open(path, "rb") as f:
        return RccFile(f.read(), path)


def build_rcc(files, version=2, compress=()):
    """Write an .rcc image (for tests): `files` maps 'dir/name' → bytes; paths
    in `compress` are stored zlib-compressed. Returns bytes."""
    # a directory tree
    root = {}
    for path, blob in files.items():
        parts = path.split("/")
        node = root
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = (path, blob)
    names = bytearray()
    name_offsets = {}

    def name_off(n):
        if n not in name_offsets:
            name_offsets[n] = len(names)
            enc = n.encode("utf-16-be")
            h = 0
            for ch in n:  # qt_hash; the reader does not check it
                h = ((h << 4) + ord(ch)) & 0xFFFFFFFF
                h ^= (h & 0xF0000000) >> 23
                h &= 0x0FFFFFFF
            names.extend(struct.pack(">HI", len(n), h) + enc)
        return name_offsets[n]

    data = bytearray()
    # breadth-first node numbering like rcc: children of a directory are consecutive
    nodes = [("", root)]
    order = []
    i = 0
    while i < len(nodes):
        name, node = nodes[i]
        if isinstance(node, dict):
            first = len(nodes)
            kids = sorted(node.items())
            order.append((name, node, first, len(kids)))
            nodes.extend(kids)
        else:
            order.append((name, node, None, None))
        i += 1
    tree = bytearray()
    for idx, (name, node, first, count) in enumerate(order):
        noff = 0 if idx == 0 else name_off(name)
        if isinstance(node, dict):
            tree += struct.pack(">IHII", noff, FLAG_DIR, count, first)
        else:
            full, blob = node
            flags = 0
            if full in compress:
                flags = FLAG_ZLIB
                blob = struct.pack(">I", len(blob)) + zlib.compress(blob)
            tree += struct.pack(">IHHHI", noff, flags, 0, 1, len(data))
            data += struct.pack(">I", len(blob)) + blob
        if version >= 2:
            tree += struct.pack(">Q", 0)
    header_len = 20 + (4 if version >= 3 else 0)
    tree_off = header_len
    data_off = tree_off + len(tree)
    names_off = data_off + len(data)
    out = bytearray(MAGIC + struct.pack(">IIII", version, tree_off, data_off, names_off))
    if version >= 3:
        out += struct.pack(">I", 0)
    return bytes(out + tree + data + names)
