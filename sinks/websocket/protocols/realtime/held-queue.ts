// A first-in first-out queue whose shift() is O(1) however long it grows
// (Array.prototype.shift copies the rest once an array is large): a
// subscriber's changes waiting for their row-level security checks.
export class HeldQueue<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  first(): T | undefined {
    return this.items[this.head];
  }

  /** The first waiting item that `accept` takes (oldest first). */
  find(accept: (item: T) => boolean): T | undefined {
    for (let at = this.head; at < this.items.length; at++) {
      const item = this.items[at];
      if (item !== undefined && accept(item)) return item;
    }
    return undefined;
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined;
    // The consumed front is dropped once it is most of the array: memory stays proportional to what waits.
    if (this.head === this.items.length) this.clear();
    else if (this.head >= 1024 && this.head * 2 >= this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }

  clear(): void {
    this.items = [];
    this.head = 0;
  }
}
