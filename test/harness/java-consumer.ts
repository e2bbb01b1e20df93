// Kafka's own Java consumer (from the broker jars), run as `java File.java`:
// the reference implementation of read_committed, to check what a Java
// application would see. Reads every partition of a topic from the start to
// its end (the last stable offset under read_committed).
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ConsumedRecord } from './kafka-consume.js';

const SOURCE = `
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
public class ReadTopic {
  public static void main(String[] args) {
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    props.put("isolation.level", args[2]);
    props.put("enable.auto.commit", "false");
    props.put("key.deserializer", StringDeserializer.class.getName());
    props.put("value.deserializer", StringDeserializer.class.getName());
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (PartitionInfo info : consumer.partitionsFor(args[1])) partitions.add(new TopicPartition(args[1], info.partition()));
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      Map<TopicPartition, Long> ends = consumer.endOffsets(partitions);
      long deadline = System.currentTimeMillis() + 120_000;
      while (partitions.stream().anyMatch(p -> consumer.position(p) < ends.get(p))) {
        if (System.currentTimeMillis() > deadline) throw new RuntimeException("did not reach the end offsets " + ends);
        for (ConsumerRecord<String, String> record : consumer.poll(Duration.ofMillis(500))) {
          Header id = record.headers().lastHeader("walrelay-id");
          System.out.println(record.partition() + "\\t" + record.offset() + "\\t" + record.timestamp() + "\\t" + record.key() + "\\t" + (id == null ? "" : new String(id.value())) + "\\t" + record.value());
        }
      }
    }
  }
}
`;

export async function javaConsume(libs: string, brokers: string[], topic: string, readCommitted: boolean): Promise<ConsumedRecord[]> {
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-java-consumer-'));
  try {
    writeFileSync(join(dir, 'ReadTopic.java'), SOURCE);
    const { stdout } = await promisify(execFile)('java', ['-cp', join(libs, '*'), join(dir, 'ReadTopic.java'), brokers.join(','), topic, readCommitted ? 'read_committed' : 'read_uncommitted'], { maxBuffer: 1 << 30 });
    return stdout.split('\n').filter((line) => line.length > 0).map((line) => {
      const [partition, offset, timestamp, key, id, ...value] = line.split('\t');
      return { topic, partition: Number(partition), offset: BigInt(offset), timestamp: Number(timestamp), key, value: value.join('\t'), tombstone: false, headers: { 'walrelay-id': id } };
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
