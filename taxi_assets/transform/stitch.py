"""One Parquet file from row groups encoded apart, so that several threads encode at once.

pyarrow's ParquetWriter encodes on the calling thread, one row group after another: on the
lake step that is the slowest part. Here each row group is written by its own ParquetWriter
into memory (any thread), and `StitchedWriter` lays the encoded row groups end to end in one
file, in order, under one footer. The column chunks are the bytes the single writer would
have written; only the footer's offsets move. So the lake keeps one file per month (readers,
the warehouse loads and the atomic publish are unchanged) while both cores encode.

The footer is Thrift compact protocol (parquet.thrift's FileMetaData). It is decoded into a
generic tree (the protocol names each field's type) and written back with the offsets
shifted; fields this module does not know pass through untouched.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

MAGIC = b"PAR1"

# Compact protocol type ids.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
_STOP = 0

# Fields that hold a file offset (parquet.thrift): RowGroup.file_offset; ColumnChunk.file_offset,
# offset_index_offset, column_index_offset; ColumnMetaData's data, index, dictionary page and
# bloom filter offsets. RowGroup.ordinal is renumbered.
_FMD_NUM_ROWS, _FMD_ROW_GROUPS = 3, 4
_RG_COLUMNS, _RG_FILE_OFFSET, _RG_ORDINAL = 1, 5, 7
_CC_OFFSETS, _CC_META = (2, 4, 6), 3
_CMD_OFFSETS = (9, 10, 11, 14)


class FooterError(ValueError):
    pass


# A struct is a list of [field id, type, value]; a list or set is (element type, [values]);
# a map is (key type, value type, [(key, value)]). Booleans in a struct keep their value in the type.


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = memoryview(data), 0

    def byte(self) -> int:
        value = self.data[self.pos]
        self.pos += 1
        return value

    def varint(self) -> int:
        shift = result = 0
        while True:
            b = self.byte()
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, ttype: int):
        if ttype in (_TRUE, _FALSE, _BYTE):
            return self.byte()
        if ttype in (_I16, _I32, _I64):
            return self.zigzag()
        if ttype == _DOUBLE:
            self.pos += 8
            return bytes(self.data[self.pos - 8 : self.pos])
        if ttype == _BINARY:
            n = self.varint()
            self.pos += n
            return bytes(self.data[self.pos - n : self.pos])
        if ttype in (_LIST, _SET):
            header = self.byte()
            size, etype = header >> 4, header & 0x0F
            if size == 15:
                size = self.varint()
            return (etype, [self.value(etype) for _ in range(size)])
        if ttype == _MAP:
            size = self.varint()
            if not size:
                return (0, 0, [])
            kinds = self.byte()
            ktype, vtype = kinds >> 4, kinds & 0x0F
            return (ktype, vtype, [(self.value(ktype), self.value(vtype)) for _ in range(size)])
        if ttype == _STRUCT:
            return self.struct()
        raise FooterError(f"unknown Thrift compact type {ttype}")

    def struct(self) -> list:
        fields, last = [], 0
        while True:
            header = self.byte()
            if header == _STOP:
                return fields
            delta, ttype = header >> 4, header & 0x0F
            fid = last + delta if delta else self.zigzag()
            value = ttype if ttype in (_TRUE, _FALSE) else self.value(ttype)
            fields.append([fid, ttype, value])
            last = fid


class _Writer:
    def __init__(self):
        self.out = bytearray()

    def varint(self, n: int) -> None:
        while n > 0x7F:
            self.out.append((n & 0x7F) | 0x80)
            n >>= 7
        self.out.append(n)

    def zigzag(self, n: int) -> None:
        self.varint((n << 1) ^ (n >> 63))

    def value(self, ttype: int, value) -> None:
        if ttype in (_TRUE, _FALSE, _BYTE):
            self.out.append(value)
        elif ttype in (_I16, _I32, _I64):
            self.zigzag(value)
        elif ttype == _DOUBLE:
            self.out += value
        elif ttype == _BINARY:
            self.varint(len(value))
            self.out += value
        elif ttype in (_LIST, _SET):
            etype, items = value
            if len(items) < 15:
                self.out.append(len(items) << 4 | etype)
            else:
                self.out.append(0xF0 | etype)
                self.varint(len(items))
            for item in items:
                self.value(etype, item)
        elif ttype == _MAP:
            ktype, vtype, items = value
            self.varint(len(items))
            if items:
                self.out.append(ktype << 4 | vtype)
            for k, v in items:
                self.value(ktype, k)
                self.value(vtype, v)
        elif ttype == _STRUCT:
            self.struct(value)
        else:
            raise FooterError(f"unknown Thrift compact type {ttype}")

    def struct(self, fields: list) -> None:
        last = 0
        for fid, ttype, value in fields:
            if 0 < fid - last <= 15:
                self.out.append((fid - last) << 4 | ttype)
            else:
                self.out.append(ttype)
                self.zigzag(fid)
            if ttype not in (_TRUE, _FALSE):
                self.value(ttype, value)
            last = fid
        self.out.append(_STOP)


def decode_footer(data: bytes) -> list:
    return _Reader(data).struct()


def encode_footer(fields: list) -> bytes:
    writer = _Writer()
    writer.struct(fields)
    return bytes(writer.out)


def _field(fields: list, fid: int):
    for f in fields:
        if f[0] == fid:
            return f
    return None


def _shift(fields: list, fids: tuple[int, ...], delta: int) -> None:
    for f in fields:
        if f[0] in fids and f[2] > 0:  # 0: not set (Arrow writes ColumnChunk.file_offset as 0)
            f[2] += delta


@dataclass
class EncodedRowGroup:
    """One row group as a one-row-group Parquet file's parts: its bytes (after the leading
    magic, up to the footer) and its footer, decoded."""

    body: bytes
    footer: list
    rows: int


def encode_row_group(table: pa.Table, schema: pa.Schema, **writer_options) -> EncodedRowGroup:
    """`table` as one row group, encoded in memory by its own ParquetWriter (thread-safe:
    nothing is shared). Writer options are ParquetWriter's."""
    sink = pa.BufferOutputStream()
    with pq.ParquetWriter(sink, schema, **writer_options) as writer:
        writer.write_table(table, row_group_size=max(table.num_rows, 1))
    data = sink.getvalue()
    (footer_len,) = struct.unpack("<I", data[-8:-4].to_pybytes())
    footer_start = len(data) - 8 - footer_len
    footer = decode_footer(data[footer_start:-8].to_pybytes())
    return EncodedRowGroup(data[4:footer_start].to_pybytes(), footer, table.num_rows)


class StitchedWriter:
    """Writes EncodedRowGroups (all of one schema and writer options), in the order given,
    into one Parquet file through `write` (bytes -> None)."""

    def __init__(self, write: Callable[[bytes], object]):
        self._write = write
        self._offset = 0
        self._row_groups: list = []
        self._template: list | None = None
        self._rows = 0
        self._emit(MAGIC)

    def _emit(self, data: bytes) -> None:
        self._write(data)
        self._offset += len(data)

    def add(self, encoded: EncodedRowGroup) -> None:
        delta = self._offset - len(MAGIC)  # the body started right after the magic in its own file
        groups = _field(encoded.footer, _FMD_ROW_GROUPS)
        if groups is None or len(groups[2][1]) != 1:
            raise FooterError("an encoded row group's footer must hold exactly one row group")
        (group,) = groups[2][1]
        _shift(group, (_RG_FILE_OFFSET,), delta)
        for chunk in _field(group, _RG_COLUMNS)[2][1]:
            _shift(chunk, _CC_OFFSETS, delta)
            meta = _field(chunk, _CC_META)
            if meta is not None:
                _shift(meta[2], _CMD_OFFSETS, delta)
        ordinal = _field(group, _RG_ORDINAL)
        if ordinal is not None:
            ordinal[2] = len(self._row_groups)
        self._row_groups.append(group)
        self._rows += encoded.rows
        if self._template is None:
            self._template = encoded.footer
        self._emit(encoded.body)

    def close(self, empty_footer: Callable[[], bytes]) -> None:
        """Write the footer. With no row group added, `empty_footer()` gives the footer bytes
        of an empty file of the schema (a template is then missing)."""
        if self._template is None:
            footer = empty_footer()
        else:
            fields = [list(f) for f in self._template]
            _field(fields, _FMD_NUM_ROWS)[2] = self._rows
            _field(fields, _FMD_ROW_GROUPS)[2] = (_STRUCT, self._row_groups)
            footer = encode_footer(fields)
        self._emit(footer + struct.pack("<I", len(footer)) + MAGIC)


def empty_footer(schema: pa.Schema, **writer_options) -> bytes:
    """The footer of a Parquet file of `schema` with no rows."""
    sink = pa.BufferOutputStream()
    pq.ParquetWriter(sink, schema, **writer_options).close()
    data = sink.getvalue().to_pybytes()
    (footer_len,) = struct.unpack("<I", data[-8:-4])
    return data[-8 - footer_len : -8]
