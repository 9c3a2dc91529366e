package redisstore

import (
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultClusterShards is the number of shards on a Redis Cluster client
// when WithShards is not given. With 60 shards whose slots are spread
// evenly (see clusterTags), the masters of a cluster whose slots were split
// evenly between 2, 3, 4, 5, 6, 10 or 12 of them (as redis-cli --cluster
// create splits them) hold the same number of shards each, and up to 12
// masters hold within 10% of their share. Each shard costs one script per
// All, Count and Expired call on Cluster.
const DefaultClusterShards = 60

// defaultShards returns the number of shards when WithShards is not given.
func defaultShards(c redis.UniversalClient) int {
	if _, ok := c.(*redis.ClusterClient); ok {
		return DefaultClusterShards
	}
	return DefaultShards
}

// maxSpreadShards is the largest number of shards whose tags clusterTags
// searches (it takes about 0.1 s then).
const maxSpreadShards = 1024

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// clusterTags returns the hash tags of n shards on Redis Cluster. Shard
// i's tag is "i" followed, when needed, by ".j" for the smallest j ≥ 1
// that puts its slot in the middle half of the i-th n-th of the slot
// space. Every process computes the same tags, and the shards spread over
// the slot space as evenly as n allows, so the masters of an evenly split
// cluster hold shares of shards within one shard of each other. (The plain
// tags "0".."15" land 6/6/4 on 3 masters.) The search costs about 2n²
// hashes, so above maxSpreadShards the plain tags are kept: so many shards
// spread evenly enough by chance.
func clusterTags(n int) []string {
	tags := make([]string, n)
	if n > maxSpreadShards {
		for i := range tags {
			tags[i] = strconv.Itoa(i)
		}
		return tags
	}
	buf := make([]byte, 0, 16)
	for i := range tags {
		lo, hi := i*clusterSlots/n, (i+1)*clusterSlots/n
		q := (hi - lo) / 4
		lo, hi = lo+q, hi-q
		buf = strconv.AppendInt(buf[:0], int64(i), 10)
		base := len(buf)
		for j := 0; ; j++ {
			if j > 0 {
				buf = strconv.AppendInt(append(buf[:base], '.'), int64(j), 10)
			}
			if s := int(crc16(buf) % clusterSlots); lo <= s && s < hi {
				tags[i] = string(buf)
				break
			}
		}
	}
	return tags
}

// crc16 is the CRC16 (XMODEM) Redis Cluster hashes keys with.
func crc16(b []byte) uint16 {
	var crc uint16
	for _, c := range b {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^c]
	}
	return crc
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		crc := uint16(i) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
		t[i] = crc
	}
	return t
}()

// isShard reports whether k is the tag of one of the store's shards: "i"
// or, on Cluster, "i.j" (see clusterTags).
func (s *Store) isShard(k string) bool {
	i, _, _ := strings.Cut(k, ".")
	n, err := strconv.Atoi(i)
	return err == nil && n >= 0 && n < len(s.shardID) && s.shardID[n] == k
}
