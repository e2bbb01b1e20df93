// Kafka's RecordBatch (magic 2), written straight into the request buffer:
// no object per record, no copy per field. Layout from the Kafka protocol
// guide ("Record Batch"); the CRC-32C covers everything from `attributes` on.
import { type Writer, varintSize, utf8Length } from './encoding.js';
import { crc32c } from './checksums.js';

export interface OutgoingRecord {
  /** Key text or its UTF-8 bytes (what the partitioner hashes); null for no key. */
  key: string | Buffer | null;
  keyBytes: number;
  /** Value text, or its UTF-8 bytes (a row change written as bytes); null for none (a tombstone: Debezium's record after a delete). */
  value: string | Buffer | null;
  valueBytes: number;
  /** Header names and values, alternating: [name, value, name, value, …]; a value may be its UTF-8 bytes. */
  headers: readonly (string | Buffer)[];
}

export interface BatchHeader {
  producerId: bigint;
  producerEpoch: number;
  baseSequence: number;
  timestamp: number;
  /** 0 none, 1 gzip, 3 lz4. */
  codec: number;
  /** Part of a Kafka transaction (attribute bit 4): invisible to read_committed consumers until committed. */
  transactional?: boolean;
}

/** Byte lengths of the current record's header strings, measured once for sizing and writing. */
let headerBytes = new Int32Array(16);

/** Writes the records of a batch (the part that gzip compresses). */
export function writeRecords(writer: Writer, records: readonly OutgoingRecord[]): void {
  for (let offsetDelta = 0; offsetDelta < records.length; offsetDelta++) {
    const { key, keyBytes, value, valueBytes, headers } = records[offsetDelta];
    if (headers.length > headerBytes.length) headerBytes = new Int32Array(headers.length);
    let headersSize = varintSize(headers.length / 2);
    for (let h = 0; h < headers.length; h++) {
      const header = headers[h];
      const length = typeof header === 'string' ? utf8Length(header) : header.length;
      headerBytes[h] = length;
      headersSize += varintSize(length) + length;
    }
    const bodySize = 1 /* attributes */ + 1 /* timestamp delta 0 */ + varintSize(offsetDelta) +
      varintSize(keyBytes) + Math.max(keyBytes, 0) + varintSize(valueBytes) + Math.max(valueBytes, 0) + headersSize;
    writer.ensure(bodySize + 5);
    writer.varint(bodySize).int8(0).varint(0).varint(offsetDelta);
    if (key === null) writer.varint(-1);
    else if (typeof key === 'string') writer.varintString(key, keyBytes);
    else writer.varintBytes(key);
    if (value === null) writer.varint(-1);
    else if (typeof value === 'string') writer.varintString(value, valueBytes);
    else writer.varintBytes(value);
    writer.varint(headers.length / 2);
    for (let h = 0; h < headers.length; h++) {
      const header = headers[h];
      if (typeof header === 'string') writer.varintString(header, headerBytes[h]);
      else writer.varintBytes(header);
    }
  }
}

/**
 * Writes one record batch. `compressedRecords` is writeRecords' output
 * compressed with the header's codec; null writes the records uncompressed.
 */
export function writeRecordBatch(writer: Writer, header: BatchHeader, records: readonly OutgoingRecord[], compressedRecords: Buffer | null): void {
  writer.int64(0n); // base offset: the broker assigns offsets
  const lengthPosition = writer.reserveInt32();
  writer.int32(-1); // partition leader epoch: set by the broker
  writer.int8(2); // magic
  const crcPosition = writer.reserveInt32();
  const crcStart = writer.offset;
  writer.int16(header.codec | (header.transactional ? 0x10 : 0));
  writer.int32(records.length - 1); // last offset delta
  writer.int64(BigInt(header.timestamp)).int64(BigInt(header.timestamp));
  writer.int64(header.producerId).int16(header.producerEpoch).int32(header.baseSequence);
  writer.int32(records.length);
  if (compressedRecords) {
    writer.ensure(compressedRecords.length);
    compressedRecords.copy(writer.buffer, writer.offset);
    writer.offset += compressedRecords.length;
  } else {
    writeRecords(writer, records);
  }
  writer.fillInt32(lengthPosition, writer.offset - lengthPosition - 4);
  writer.buffer.writeUInt32BE(crc32c(writer.buffer, crcStart, writer.offset), crcPosition);
}
