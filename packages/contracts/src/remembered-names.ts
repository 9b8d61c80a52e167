/**
 * What was worked out once for each field name (fleets send the same few names in every point), kept
 * for at most `max` names: past that it starts over, so a stream of ever-new names cannot grow it.
 */
export class RememberedNames<V> {
  private readonly known = new Map<string, V>()

  constructor(private readonly max = 10_000) {}

  get(name: string): V | undefined {
    return this.known.get(name)
  }

  remember(name: string, value: V): V {
    if (this.known.size >= this.max) this.known.clear()
    this.known.set(name, value)
    return value
  }
}
