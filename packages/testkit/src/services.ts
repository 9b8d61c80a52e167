/** Where the shared test services are: the same variables the apps read, with the same defaults. */
export const serviceUrls = {
  redis: process.env.REDIS_URL || 'redis://127.0.0.1:6379',
  postgres: process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/iotflow',
  influx: process.env.INFLUX_URL || 'http://127.0.0.1:8086',
  mqtt: process.env.MQTT_URL || 'mqtt://127.0.0.1:1883',
}
