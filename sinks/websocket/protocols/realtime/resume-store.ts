// Where the resume points of Realtime clients that name themselves
// (walrelay_client) live when several processes serve them: on `walrelay
// edge`, in the feed's own Redis or Kafka (sinks/feed/*-resume-store.ts), so
// that a client reconnecting to any edge resumes where it stood. A point is
// an event id per joined topic: "resume after this event" means the same on
// every edge, where a ring position does not.

/** Each joined topic of one client name and the id of the last change it was sent there. */
export interface StoredResume {
  name: string;
  topics: Record<string, string>;
}

export interface ResumeStore {
  /** Stores the points (each replaces the name's previous one), kept for `windowMs`. */
  save(points: readonly StoredResume[], windowMs: number): Promise<void>;
  /** The name's point saved within the window, or null. */
  load(name: string, windowMs: number): Promise<Record<string, string> | null>;
  close(): Promise<void>;
}
