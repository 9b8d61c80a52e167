import { connect, type Socket } from 'node:net'

/**
 * A device's MQTT 3.1.1 connection that publishes QoS 1 and waits for each PUBACK, and hears the
 * bridge's answers to refused messages on its errors topic (QoS 0). Written on a bare socket: a
 * full client (mqtt.js) costs several times the CPU per message, and on two shared cores the load
 * generator must leave the CPU to what it measures.
 */
export class MqttPublisher {
  private buffered: Buffer = Buffer.alloc(0)
  private nextPacketId = 1
  private readonly waiting = new Map<number, { resolve: () => void; reject: (error: Error) => void }>()
  private connected: { resolve: () => void; reject: (error: Error) => void } | undefined
  private failure: Error | undefined

  private constructor(
    private readonly socket: Socket,
    /** Called with the payload of each message on a subscribed topic. */
    private readonly onMessage: (topic: string, payload: Buffer) => void,
  ) {
    socket.setNoDelay(true)
    socket.on('data', (chunk: Buffer) => this.receive(chunk))
    socket.on('error', (error) => this.fail(error))
    socket.on('close', () => this.fail(new Error('connection closed')))
  }

  /** Connects with a clean session and no keep-alive (the publisher is never idle for long). */
  static async connect(
    url: string,
    clientId: string,
    onMessage: (topic: string, payload: Buffer) => void = () => {},
  ): Promise<MqttPublisher> {
    const { hostname, port } = new URL(url)
    const socket = connect(Number(port || 1883), hostname)
    const publisher = new MqttPublisher(socket, onMessage)
    await new Promise<void>((resolve, reject) => {
      publisher.connected = { resolve, reject }
      const variableHeader = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 0]) // "MQTT", 3.1.1, clean
      socket.write(packet(0x10, [variableHeader, lengthPrefixed(clientId)]))
    })
    return publisher
  }

  /** Subscribes at QoS 0 (the SUBACK is not awaited: messages that arrive are counted when they do). */
  subscribe(topic: string): void {
    const id = this.packetId()
    this.socket.write(
      packet(0x82, [Buffer.from([id >> 8, id & 0xff]), lengthPrefixed(topic), Buffer.from([0])]),
    )
  }

  /** Resolves on the broker's PUBACK. */
  publish(topic: string, payload: string): Promise<void> {
    if (this.failure) return Promise.reject(this.failure)
    const id = this.packetId()
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject })
      this.socket.write(
        packet(0x32, [lengthPrefixed(topic), Buffer.from([id >> 8, id & 0xff]), Buffer.from(payload)]),
      )
    })
  }

  async close(): Promise<void> {
    if (this.failure) return
    this.failure = new Error('closed')
    await new Promise<void>((resolve) => this.socket.end(packet(0xe0, []), () => resolve()))
    this.socket.destroy()
  }

  private packetId(): number {
    const id = this.nextPacketId
    this.nextPacketId = id === 0xffff ? 1 : id + 1
    return id
  }

  private receive(chunk: Buffer): void {
    this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk
    for (;;) {
      const header = remainingLength(this.buffered)
      if (!header) return
      const end = header.offset + header.length
      if (this.buffered.length < end) return
      this.handle(this.buffered[0] as number, this.buffered.subarray(header.offset, end))
      this.buffered = this.buffered.subarray(end)
    }
  }

  private handle(firstByte: number, body: Buffer): void {
    switch (firstByte >> 4) {
      case 2: // CONNACK: session present, return code
        if (body[1] === 0) this.connected?.resolve()
        else this.connected?.reject(new Error(`broker refused the connection (return code ${body[1]})`))
        this.connected = undefined
        return
      case 4: {
        // PUBACK
        const id = body.readUInt16BE(0)
        this.waiting.get(id)?.resolve()
        this.waiting.delete(id)
        return
      }
      case 3: {
        // PUBLISH at QoS 0 (our only subscription): topic, then the payload
        const topicLength = body.readUInt16BE(0)
        this.onMessage(body.toString('utf8', 2, 2 + topicLength), body.subarray(2 + topicLength))
        return
      }
      // SUBACK, PINGRESP: nothing to do
    }
  }

  private fail(error: Error): void {
    this.failure ??= error
    this.connected?.reject(error)
    this.connected = undefined
    for (const pending of this.waiting.values()) pending.reject(error)
    this.waiting.clear()
  }
}

function lengthPrefixed(text: string): Buffer {
  const bytes = Buffer.from(text)
  const out = Buffer.allocUnsafe(2 + bytes.length)
  out.writeUInt16BE(bytes.length, 0)
  bytes.copy(out, 2)
  return out
}

/** A packet: its first byte, the remaining length (1–4 bytes, 7 bits each), the parts. */
function packet(firstByte: number, parts: Buffer[]): Buffer {
  let length = parts.reduce((sum, part) => sum + part.length, 0)
  const header = [firstByte]
  do {
    let byte = length % 128
    length = Math.floor(length / 128)
    if (length > 0) byte |= 0x80
    header.push(byte)
  } while (length > 0)
  return Buffer.concat([Buffer.from(header), ...parts])
}

/** The remaining length of the packet at the start of `buffer`, or undefined if not all there yet. */
function remainingLength(buffer: Buffer): { length: number; offset: number } | undefined {
  let length = 0
  let multiplier = 1
  for (let i = 1; i <= 4; i++) {
    const byte = buffer[i]
    if (byte === undefined) return undefined
    length += (byte & 0x7f) * multiplier
    if ((byte & 0x80) === 0) return { length, offset: i + 1 }
    multiplier *= 128
  }
  throw new Error('malformed MQTT packet: remaining length over 4 bytes')
}
