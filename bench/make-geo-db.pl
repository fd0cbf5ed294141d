#!/usr/bin/perl
# make-geo-db.pl — writes the MaxMind DB bench/run gives the geo detector: every public IPv4 /8
# belongs to one of 20 countries in turn, so the load generator's random addresses fall in many
# countries and its home addresses in a few. Needs libmaxmind-db-writer-perl.
# Usage: bench/make-geo-db.pl OUT.mmdb
use strict;
use warnings;
use MaxMind::DB::Writer::Tree;

my $out = shift or die "usage: $0 OUT.mmdb\n";
my @countries = qw(DE FR GB IT ES NL SE PL US CA BR CN JP IN RU ZA AU MX NG KR);
my %types = (country => 'map', iso_code => 'utf8_string', names => 'map', en => 'utf8_string');
my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version => 6,
  record_size => 28,
  database_type => 'GeoLite2-Country',
  languages => ['en'],
  description => { en => 'saslguard benchmark database' },
  map_key_type_callback => sub { $types{ $_[0] } // die "no type for map key $_[0]\n" },
  remove_reserved_networks => 0,
  alias_ipv6_to_ipv4 => 1);
for my $first (1 .. 223) {
  next if $first == 10 || $first == 127;
  my $code = $countries[$first % @countries];
  $tree->insert_network("$first.0.0.0/8", { country => { iso_code => $code, names => { en => $code } } });
}
open my $fh, '>:raw', $out or die "cannot write $out: $!\n";
$tree->write_tree($fh);
close $fh or die "cannot write $out: $!\n";
