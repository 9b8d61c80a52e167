/**
 * What a simulated sensor reports: temperature and humidity drifting slowly, a battery draining,
 * the radio's signal strength. Every field is a number, always the same set, as real fleets send.
 */
export class SensorReadings {
  private temperature = 18 + Math.random() * 8
  private humidity = 35 + Math.random() * 30
  private battery = 60 + Math.random() * 40

  next() {
    this.temperature = clamp(this.temperature + (Math.random() - 0.5) * 0.2, -20, 50)
    this.humidity = clamp(this.humidity + (Math.random() - 0.5) * 0.5, 5, 100)
    this.battery = Math.max(0, this.battery - Math.random() * 0.001)
    return {
      temperature: round(this.temperature, 2),
      humidity: round(this.humidity, 1),
      battery: round(this.battery, 1),
      rssi: -95 + Math.floor(Math.random() * 50),
    }
  }
}

const clamp = (value: number, min: number, max: number) => Math.min(max, Math.max(min, value))
const round = (value: number, digits: number) => Math.round(value * 10 ** digits) / 10 ** digits

/** Epoch ms that only go forward: (device, timestamp) identifies a point, so a device never repeats one. */
export class DeviceClock {
  private last = 0

  next(): number {
    this.last = Math.max(Date.now(), this.last + 1)
    return this.last
  }
}
