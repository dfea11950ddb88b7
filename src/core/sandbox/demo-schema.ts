// The demo schema, shaped like the seeds' business: users, merchants, riders and orders, each
// row carrying a shard id and the DRC timestamp; INT and BIGINT keys, a composite key, nullable,
// float/decimal/text/json/binary/enum/date columns.
export const DEMO_DATABASE = 'ezdemo';

export const DEMO_TABLES = ['users', 'merchants', 'riders', 'orders', 'order_items'] as const;
export type DemoTable = (typeof DEMO_TABLES)[number];

/** shard-key column of each demo table, for the topology file's shard map */
export const DEMO_SHARD_TABLES: Record<string, string> = Object.fromEntries(DEMO_TABLES.map((t) => [`${DEMO_DATABASE}.${t}`, 'shard_id']));

const DRC_TS = (col: string) => `${col} TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)`;

/** CREATE TABLE statements; `q` is the identifier quoting helper, `ts` the DRC timestamp column. */
export function demoDdl(q: (name: string) => string, ts: string): Record<DemoTable, string> {
  const c = DRC_TS(q(ts));
  return {
    users: `CREATE TABLE ${q('users')} (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
  shard_id SMALLINT UNSIGNED NOT NULL,
  name VARCHAR(64) NOT NULL,
  email VARCHAR(128) NULL,
  phone CHAR(11) NULL,
  balance DECIMAL(12,2) NOT NULL DEFAULT 0.00,
  profile JSON NULL,
  avatar_hash BINARY(16) NULL,
  created_at DATETIME(3) NOT NULL,
  ${c},
  PRIMARY KEY (id),
  KEY idx_shard (shard_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    merchants: `CREATE TABLE ${q('merchants')} (
  id INT NOT NULL AUTO_INCREMENT,
  shard_id SMALLINT UNSIGNED NOT NULL,
  name VARCHAR(100) NOT NULL,
  rating FLOAT NULL,
  lat DOUBLE NOT NULL,
  lng DOUBLE NOT NULL,
  description TEXT NULL,
  opened_on DATE NULL,
  ${c},
  PRIMARY KEY (id),
  KEY idx_shard (shard_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    riders: `CREATE TABLE ${q('riders')} (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT,
  shard_id SMALLINT UNSIGNED NOT NULL,
  name VARCHAR(64) NOT NULL,
  status ENUM('idle','busy','off') NOT NULL DEFAULT 'idle',
  vehicle VARCHAR(16) NULL,
  last_seen DATETIME(3) NULL,
  ${c},
  PRIMARY KEY (id),
  KEY idx_shard (shard_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    orders: `CREATE TABLE ${q('orders')} (
  id BIGINT NOT NULL AUTO_INCREMENT,
  shard_id SMALLINT UNSIGNED NOT NULL,
  user_id BIGINT UNSIGNED NOT NULL,
  merchant_id INT NOT NULL,
  rider_id INT UNSIGNED NULL,
  amount DECIMAL(10,2) NOT NULL,
  tip DECIMAL(8,2) NULL,
  status TINYINT NOT NULL DEFAULT 0,
  items JSON NULL,
  note TEXT NULL,
  created_at DATETIME(3) NOT NULL,
  ${c},
  PRIMARY KEY (id),
  KEY idx_shard (shard_id),
  KEY idx_user (user_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
    order_items: `CREATE TABLE ${q('order_items')} (
  order_id BIGINT NOT NULL,
  line_no SMALLINT UNSIGNED NOT NULL,
  shard_id SMALLINT UNSIGNED NOT NULL,
  sku VARCHAR(32) NOT NULL,
  qty INT NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  ${c},
  PRIMARY KEY (order_id, line_no),
  KEY idx_shard (shard_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
  };
}
